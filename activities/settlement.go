package activities

import (
	"context"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// Error types of the settlement activities that no retry can fix.
const (
	// ErrTypePeerRefused: the peer definitely refused the call (bad
	// request, unknown transfer, forbidden configuration).
	ErrTypePeerRefused = "PeerRefused"
	// ErrTypeXferNotFound: the coordinator has no record of a transfer.
	ErrTypeXferNotFound = "XferNotFound"
)

// XferItem is one cross-registry transfer in a settlement batch.
type XferItem struct {
	ID          uuid.UUID
	From, To    string
	AmountUnits int64
	Memo        string
}

// XferVote is the target's answer for one transfer.
type XferVote struct {
	ID       uuid.UUID
	Status   xferstate.Status // Prepared, Rejected, Committed, Aborted or Unknown
	Reason   string
	FeeUnits int64
}

// XferDecision is the coordinator's decision for one transfer.
type XferDecision struct {
	ID     uuid.UUID
	Commit bool
	Reason string
	// KeepHoldOnAbort: an abort leaves the sender's hold active (status
	// Aborting) until SettlementVoidAborted; false voids it at once
	// (the behaviour of sagas started before that change).
	KeepHoldOnAbort bool
}

// XferOutcome is a transfer's coordinator status after the decision.
type XferOutcome struct {
	ID     uuid.UUID
	Status xferstate.Status // Committing, Committed, Aborting or Aborted
	Reason string
}

// SettlementLedger is the coordinator's TEG (the source).
type SettlementLedger interface {
	// Decide records decisions in one transaction (idempotent: a decided
	// transfer keeps its decision) and returns every transfer's status.
	Decide(ctx context.Context, ds []XferDecision) ([]XferOutcome, error)
	// Finish marks committing transfers committed with their fees.
	Finish(ctx context.Context, fees map[uuid.UUID]int64) error
	// VoidAborted voids the holds of aborting transfers and marks them
	// aborted (idempotent: other transfers are left alone).
	VoidAborted(ctx context.Context, ids []uuid.UUID) error
}

// SettlementPeers calls the target's participant API.
type SettlementPeers interface {
	Prepare(ctx context.Context, target string, items []XferItem) ([]XferVote, error)
	Commit(ctx context.Context, target string, ids []uuid.UUID) ([]XferVote, error)
	Abort(ctx context.Context, target string, ids []uuid.UUID) ([]XferVote, error)
}

// Settlement are the CrossRegistrySettlement workflow's activities; the
// workflow runs them as local activities (same process as the source TEG).
type Settlement struct {
	Ledger SettlementLedger
	Peers  SettlementPeers
}

// PrepareInput names a batch to prepare on Target.
type PrepareInput struct {
	Target string
	Items  []XferItem
}

// IDsInput names transfers on Target.
type IDsInput struct {
	Target string
	IDs    []uuid.UUID
}

// SettlementPrepare asks the target to prepare the batch.
func (a *Settlement) SettlementPrepare(ctx context.Context, in PrepareInput) ([]XferVote, error) {
	v, err := a.Peers.Prepare(ctx, in.Target, in.Items)
	return v, peerError(err)
}

// SettlementCommit asks the target to credit the committed transfers.
func (a *Settlement) SettlementCommit(ctx context.Context, in IDsInput) ([]XferVote, error) {
	v, err := a.Peers.Commit(ctx, in.Target, in.IDs)
	return v, peerError(err)
}

// SettlementAbort asks the target to drop its prepares (a compensation).
func (a *Settlement) SettlementAbort(ctx context.Context, in IDsInput) ([]XferVote, error) {
	v, err := a.Peers.Abort(ctx, in.Target, in.IDs)
	return v, peerError(err)
}

// SettlementDecide records the decisions on the source TEG.
func (a *Settlement) SettlementDecide(ctx context.Context, ds []XferDecision) ([]XferOutcome, error) {
	out, err := a.Ledger.Decide(ctx, ds)
	if apperr.Is(err, apperr.NotFound) || apperr.Is(err, apperr.Invalid) {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeXferNotFound, err)
	}
	return out, err
}

// SettlementVoidAborted releases the senders' holds of transfers whose
// abort the target acknowledged.
func (a *Settlement) SettlementVoidAborted(ctx context.Context, ids []uuid.UUID) error {
	err := a.Ledger.VoidAborted(ctx, ids)
	if apperr.Is(err, apperr.NotFound) || apperr.Is(err, apperr.Invalid) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeXferNotFound, err)
	}
	return err
}

// SettlementFinish marks committed transfers done on the source TEG.
func (a *Settlement) SettlementFinish(ctx context.Context, fees map[uuid.UUID]int64) error {
	return a.Ledger.Finish(ctx, fees)
}

func peerError(err error) error {
	if err == nil {
		return nil
	}
	switch apperr.CodeOf(err) {
	case apperr.Unavailable, apperr.Internal:
		return err // retry
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypePeerRefused, err)
}

// PrepareSweeper is the participant side's sweep of stale prepares.
type PrepareSweeper interface {
	// SweepStalePrepares asks the coordinators of prepares older than the
	// threshold for their decisions and applies them (commit when
	// committed, abort when aborted or unknown), returning how many it
	// settled.
	SweepStalePrepares(ctx context.Context) (int, error)
}

// PrepareSweep runs the participant sweeper.
type PrepareSweep struct {
	Sweeper PrepareSweeper
}

// SweepPrepares is the sweeper activity.
func (a *PrepareSweep) SweepPrepares(ctx context.Context) (int, error) {
	return a.Sweeper.SweepStalePrepares(ctx)
}
