package ledgerstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
)

// Cross-registry transfers (SPEC §6.1). This TEG plays two roles:
//
//   - coordinator, for transfers its senders make to agents of a peer
//     registry: BeginXfer reserves the amount with a hold and records the
//     transfer (pending); DecideXfers records the decision, posting the
//     hold to transit:<target> (commit) or marking the transfer aborting
//     with its hold still active (abort); VoidAbortedXfers voids the hold
//     once the target acknowledged the abort; FinishXfers marks committed
//     transfers done once the target credited them.
//   - participant, for transfers peers send to its agents: PrepareXfers
//     validates receivers and records prepares, CommitXfers credits the
//     receiver from transit:<source> (fee to this registry's
//     fee_collector), AbortXfers drops prepares.
//
// Every operation is idempotent by transfer ID and takes a batch: one
// settlement workflow carries many transfers of one (source, target) pair
// through one transaction per step.
//
// The coordinator's operations live in xfer_coordinator.go (and the group
// commit of accepts in xfer_batch.go), the participant's in
// xfer_participant.go; this file holds what both roles share: statuses,
// limits, transit accounts, the TokensTransferred payload and the rows of
// the ledger moves.

// Event types of the cross-registry legs (events.TypeCrossRegistry*).
const (
	EventCrossRegistryDebited  = events.TypeCrossRegistryDebited  // xfer-<id>-debit (source)
	EventCrossRegistryCredited = events.TypeCrossRegistryCredited // xfer-<id>-credit (target)
)

// Limits.
const (
	MaxXferBatch   = 1000           // transfers per decide/prepare/commit/abort call
	XferHoldTTL    = 24 * time.Hour // how long a cross-registry hold may wait for its decision
	xferClientPref = "#xfer:"       // store-made keys of holds and transfer rows (never a caller key)
)

// The statuses of a cross-registry transfer (Xfer.Status on the
// coordinator, XferPrepareResult.Status on the participant) and the rules
// that move them are package xferstate's; the SQL of queries/teg spells
// the same strings.

// CrossRegistry reports whether h reserves a cross-registry transfer (only
// its settlement may post or void it).
// A payment token's hold for a payee on another registry counts too: only
// its settlement (SettlePaidXfer) or release may decide it.
func (h Hold) CrossRegistry() bool {
	return strings.HasPrefix(h.IdempotencyKey, xferClientPref) || strings.HasPrefix(h.IdempotencyKey, paidXferPref)
}

// TransitAccount is the account that carries value to or from peer.
func TransitAccount(peer string) string { return "transit:" + peer }

func clipID(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// transitOpened remembers transit accounts known to exist (they are never
// deleted), so the hot path opens each one once per process.
var transitOpened sync.Map // "<pool ptr>/<account>" → struct{}

func (s *Store) ensureTransit(ctx context.Context, peer string) error {
	acct := TransitAccount(peer)
	key := fmt.Sprintf("%p/%s", s.pool, acct)
	if _, ok := transitOpened.Load(key); ok {
		return nil
	}
	if _, _, err := s.OpenAccount(ctx, acct, ledger.KindTransit); err != nil {
		return err
	}
	transitOpened.Store(key, struct{}{})
	return nil
}

// xferInfo is the payload both TEGs put on TokensTransferred xfer-<id>:
// identical from either side, so whichever copy the EventStore keeps says
// the same. It carries no postings; the legs are the side-specific
// CrossRegistryDebited and CrossRegistryCredited events.
type xferInfo struct {
	TransferID     uuid.UUID `json:"transfer_id"`
	From           string    `json:"from"`
	To             string    `json:"to"`
	AmountUnits    int64     `json:"amount_units"`
	Memo           string    `json:"memo,omitempty"`
	SourceRegistry string    `json:"source_registry"`
	TargetRegistry string    `json:"target_registry"`
}

type xferLegPayload struct {
	TransferID uuid.UUID `json:"transfer_id"`
	// HoldID and PostedTransferID (debit only): the sender's hold this
	// debit posts and the ledger transfer recording it. The debit is the
	// hold's post: a cross-registry hold has no HoldPosted event of its
	// own (HoldPlaced, then CrossRegistryDebited or HoldVoided).
	HoldID           *uuid.UUID `json:"hold_id,omitempty"`
	PostedTransferID *uuid.UUID `json:"posted_transfer_id,omitempty"`

	From           string `json:"from"`
	To             string `json:"to"`
	AmountUnits    int64  `json:"amount_units"`
	FeeUnits       int64  `json:"fee_units"`
	NetUnits       int64  `json:"net_units"`
	SourceRegistry string `json:"source_registry"`
	TargetRegistry string `json:"target_registry"`
}

// DecideXfers records the decision for each transfer in one transaction.
// Commit posts the hold to transit:<target> (CrossRegistryDebited
// xfer-<id>-debit, which names the hold it posts, and TokensTransferred
// xfer-<id>; no separate HoldPosted: it repeated the debit) and
// moves the transfer to committing; abort moves it to aborting and keeps
// the hold (KeepHoldOnAbort; VoidAbortedXfers finishes it), or voids the
// hold (HoldVoided) and moves it to aborted. A commit whose hold can no

func xferInfoEvent(id uuid.UUID, from, to string, amount int64, memo, source, target string, now time.Time) (events.Envelope, error) {
	return newEvent(EventTokensTransferred, "xfer-"+id.String(), from, now, nil, xferInfo{
		TransferID: id, From: from, To: to, AmountUnits: amount, Memo: memo, SourceRegistry: source, TargetRegistry: target,
	})
}

// insertXferRows writes journal entries and transfer rows for the ledger
// moves of cross-registry legs (their events are written by the caller).
func (s *Store) insertXferRows(ctx context.Context, tx pgx.Tx, ts []Transfer, kind string, now time.Time) error {
	n := len(ts)
	if n == 0 {
		return nil
	}
	idBuf := make([]byte, 32*n)
	jp := tegdb.JournalEntriesInsertTransfersParams{
		Now: now, Ids: make([][]byte, n), Kinds: make([]string, n), Senders: make([]string, n),
		Receivers: make([]string, n), Amounts: make([]int64, n), Fees: make([]int64, n),
	}
	tp := tegdb.TransfersInsertParams{
		Now: now, Ids: jp.Ids, Senders: jp.Senders, Receivers: jp.Receivers, Amounts: jp.Amounts, Fees: jp.Fees,
		FeeBps: make([]int32, n), Memos: make([]string, n), ClientKeys: make([]string, n), HoldIds: make([][]byte, n),
	}
	for i, t := range ts {
		jp.Ids[i] = uuidBytes(idBuf, i, t.ID)
		jp.Kinds[i], jp.Senders[i], jp.Receivers[i], jp.Amounts[i], jp.Fees[i] = kind, t.From, t.To, t.AmountUnits, t.FeeUnits
		tp.FeeBps[i], tp.Memos[i], tp.ClientKeys[i] = int32(t.FeeBps), t.Memo, t.IdempotencyKey
		hold := uuid.Nil
		if t.HoldID != nil {
			hold = *t.HoldID
		}
		tp.HoldIds[i] = uuidBytes(idBuf, n+i, hold)
	}
	if err := s.q.JournalEntriesInsertTransfers(ctx, tx, jp); err != nil {
		return mapConstraint(err)
	}
	return mapConstraint(s.q.TransfersInsert(ctx, tx, tp))
}

// FinishXfers marks committing transfers committed with the fee the target
