package activities

import (
	"context"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// ErrTypeBridgeNotFound: this TEG has no record of the bridge operation.
const ErrTypeBridgeNotFound = "BridgeNotFound"

// Outcomes of a bridge step (BridgeStep.Outcome).
const (
	// BridgeApplied: the peer applied the operation (minted or released).
	BridgeApplied = "applied"
	// BridgeRefused: the peer definitely did not apply it and never will
	// (it refused it, or said it has no record and fenced the ID).
	BridgeRefused = "refused"
	// BridgeUndelivered: the request never reached the peer (no
	// connection was made), so this attempt applied nothing.
	BridgeUndelivered = "undelivered"
	// BridgeUnknown: the request may have reached the peer and its answer
	// was lost: only asking the peer can tell.
	BridgeUnknown = "unknown"
	// BridgeFinished: the operation is already completed or refunded here.
	BridgeFinished = "finished"
)

// BridgeRecord is a bridge operation as this TEG recorded it when its API
// accepted it: the only source of what is sent to the peer.
type BridgeRecord struct {
	ID          uuid.UUID
	Kind        string // send or redeem
	PeerFrame   string
	Recipient   string
	AmountUnits int64
	Status      string // pending, completed, refunded
	ExpiresAt   time.Time
}

// BridgeAnswer is the peer's answer to a delivery or a question.
type BridgeAnswer struct {
	Outcome  string // BridgeApplied, BridgeRefused, BridgeUndelivered or BridgeUnknown
	Reason   string
	FeeUnits int64
}

// BridgeLedger is the bridge activities' view of this TEG.
type BridgeLedger interface {
	BridgeRecord(ctx context.Context, id uuid.UUID) (BridgeRecord, error)
	BridgeComplete(ctx context.Context, id uuid.UUID, feeUnits int64) error
	BridgeRefund(ctx context.Context, id uuid.UUID, reason string) error
}

// BridgePeers calls the peer frame's mainframe TEG. Transport failures are
// answers (BridgeUndelivered, BridgeUnknown), not errors.
type BridgePeers interface {
	Deliver(ctx context.Context, r BridgeRecord) BridgeAnswer
	Ask(ctx context.Context, r BridgeRecord) BridgeAnswer
}

// Bridge holds the cross-frame bridge activities.
type Bridge struct {
	Ledger BridgeLedger
	Peers  BridgePeers
}

// BridgeStep is what one step learnt.
type BridgeStep struct {
	BridgeAnswer
	ExpiresAt time.Time
	Status    string // the record's status before the step
}

func (a *Bridge) record(ctx context.Context, id uuid.UUID) (BridgeRecord, error) {
	r, err := a.Ledger.BridgeRecord(ctx, id)
	if apperr.Is(err, apperr.NotFound) {
		return r, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBridgeNotFound, err)
	}
	return r, err
}

// BridgeDeliver sends operation id to the peer once (mint for a send,
// release for a redeem), with the terms read from this TEG's record.
func (a *Bridge) BridgeDeliver(ctx context.Context, id uuid.UUID) (BridgeStep, error) {
	r, err := a.record(ctx, id)
	if err != nil {
		return BridgeStep{}, err
	}
	st := BridgeStep{ExpiresAt: r.ExpiresAt, Status: r.Status}
	if r.Status != "pending" {
		st.Outcome = BridgeFinished
		return st, nil
	}
	st.BridgeAnswer = a.Peers.Deliver(ctx, r)
	return st, nil
}

// BridgeAsk asks the peer whether it applied operation id; the peer fences
// an ID it never applied, so "refused" is final.
func (a *Bridge) BridgeAsk(ctx context.Context, id uuid.UUID) (BridgeStep, error) {
	r, err := a.record(ctx, id)
	if err != nil {
		return BridgeStep{}, err
	}
	st := BridgeStep{ExpiresAt: r.ExpiresAt, Status: r.Status}
	if r.Status != "pending" {
		st.Outcome = BridgeFinished
		return st, nil
	}
	st.BridgeAnswer = a.Peers.Ask(ctx, r)
	return st, nil
}

// BridgeCompleteInput completes an operation the peer applied.
type BridgeCompleteInput struct {
	ID       uuid.UUID
	FeeUnits int64
}

// BridgeComplete records that the peer applied the operation.
func (a *Bridge) BridgeComplete(ctx context.Context, in BridgeCompleteInput) error {
	return classifyBridge(a.Ledger.BridgeComplete(ctx, in.ID, in.FeeUnits))
}

// BridgeRefundInput refunds an operation the peer did not apply.
type BridgeRefundInput struct {
	ID     uuid.UUID
	Reason string
}

// BridgeRefund unlocks a send or re-mints a redeem's burn.
func (a *Bridge) BridgeRefund(ctx context.Context, in BridgeRefundInput) error {
	return classifyBridge(a.Ledger.BridgeRefund(ctx, in.ID, in.Reason))
}

// classifyBridge makes the ledger's definite refusals non-retryable.
func classifyBridge(err error) error {
	switch {
	case err == nil:
		return nil
	case apperr.Is(err, apperr.NotFound):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBridgeNotFound, err)
	case apperr.Is(err, apperr.Conflict):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeXferRefused, err)
	}
	return err
}

// BridgeBatchLedger is what the batch activities need of this TEG.
type BridgeBatchLedger interface {
	BridgeRecords(ctx context.Context, ids []uuid.UUID) ([]BridgeRecord, error)
	BridgeCompleteMany(ctx context.Context, fees map[uuid.UUID]int64) error
}

// BridgeBatchPeers delivers several operations to one peer frame in one call.
type BridgeBatchPeers interface {
	DeliverBatch(ctx context.Context, frame string, rs []BridgeRecord) []BridgeAnswer
}

// BridgeBatch holds the batch activities of the bridge.
type BridgeBatch struct {
	Ledger BridgeBatchLedger
	Peers  BridgeBatchPeers
}

// BridgeBatchInput names a batch's operations and the peer frame the
// batch was formed for.
type BridgeBatchInput struct {
	Peer string
	IDs  []uuid.UUID
}

// BridgeItemStep is one operation's step in a batch.
type BridgeItemStep struct {
	ID uuid.UUID
	BridgeStep
}

// BridgeDeliverBatch sends the pending operations among in.IDs that this
// TEG recorded for in.Peer in one call, with the terms from the records.
// Operations not pending are answered BridgeFinished; unknown IDs and
// operations with another peer are answered BridgeUndelivered (their own
// workflow deals with them).
func (a *BridgeBatch) BridgeDeliverBatch(ctx context.Context, in BridgeBatchInput) ([]BridgeItemStep, error) {
	recs, err := a.Ledger.BridgeRecords(ctx, in.IDs)
	if err != nil {
		return nil, err
	}
	byID := make(map[uuid.UUID]BridgeRecord, len(recs))
	for _, r := range recs {
		byID[r.ID] = r
	}
	out := make([]BridgeItemStep, len(in.IDs))
	var send []BridgeRecord
	var at []int
	for i, id := range in.IDs {
		r, ok := byID[id]
		out[i] = BridgeItemStep{ID: id, BridgeStep: BridgeStep{ExpiresAt: r.ExpiresAt, Status: r.Status}}
		switch {
		case !ok || r.PeerFrame != in.Peer:
			out[i].Outcome = BridgeUndelivered
		case r.Status != "pending":
			out[i].Outcome = BridgeFinished
		default:
			send = append(send, r)
			at = append(at, i)
		}
	}
	if len(send) > 0 {
		for j, ans := range a.Peers.DeliverBatch(ctx, in.Peer, send) {
			out[at[j]].BridgeAnswer = ans
		}
	}
	return out, nil
}

// BridgeCompleteBatch records that the peer applied these operations.
func (a *BridgeBatch) BridgeCompleteBatch(ctx context.Context, fees map[uuid.UUID]int64) error {
	return a.Ledger.BridgeCompleteMany(ctx, fees)
}
