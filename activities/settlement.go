package activities

import (
	"context"
	"fmt"

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
	// ErrTypeXferRefused: the source's record of a transfer does not allow
	// the step (a transfer to another target, or a commit or abort the
	// source never decided). Nothing was sent or recorded.
	ErrTypeXferRefused = "XferRefused"
)

// XferItem is one cross-registry transfer in a settlement batch, as the
// batcher started the workflow with it. Only ID is used: the parties and
// the amount are read from the source's record (XferRecord) by every
// activity, so a workflow started with other values moves nothing they
// name. The other fields stay for the histories that carry them.
type XferItem struct {
	ID          uuid.UUID
	From, To    string
	AmountUnits int64
	Memo        string
}

// XferRecord is a transfer as the source TEG recorded it when its API
// accepted it: the only source of the terms sent to the target.
type XferRecord struct {
	ID     uuid.UUID
	Target string
	Terms  xferstate.Terms
	Memo   string
	Status xferstate.Status
}

// XferVote is the target's answer for one transfer.
type XferVote struct {
	ID       uuid.UUID
	Status   xferstate.Status // Prepared, Rejected, Committed, Aborted or Unknown
	Reason   string
	FeeUnits int64
	// Terms are what the target recorded for the transfer (nil when it
	// did not say; the decision then refuses to commit it).
	Terms *xferstate.Terms
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
	// Target is the registry the saga prepared the transfer on; the
	// transfer must be addressed to it.
	Target string
	// Prepared are the terms the target reported it prepared (from its
	// vote), checked against the source's record before a commit.
	Prepared *xferstate.Terms
	// Mismatch, set by SettlementDecide (never by the workflow), says
	// which terms differed when the check turned the decision into an
	// abort; the ledger records it with an event.
	Mismatch string
}

// XferOutcome is a transfer's coordinator status after the decision.
type XferOutcome struct {
	ID     uuid.UUID
	Status xferstate.Status // Committing, Committed, Aborting or Aborted
	Reason string
}

// SettlementLedger is the coordinator's TEG (the source).
type SettlementLedger interface {
	// Records returns the source's record of each of ids it knows
	// (unknown IDs are absent from the map).
	Records(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]XferRecord, error)
	// Decide records decisions in one transaction (idempotent: a decided
	// transfer keeps its decision) and returns every transfer's status.
	// A decision with a Mismatch that aborts a pending transfer is
	// recorded with an event and counted.
	Decide(ctx context.Context, ds []XferDecision) ([]XferOutcome, error)
	// Finish marks committing transfers committed with their fees.
	Finish(ctx context.Context, fees map[uuid.UUID]int64) error
	// VoidAborted voids the holds of aborting transfers and marks them
	// aborted (idempotent: other transfers are left alone).
	VoidAborted(ctx context.Context, ids []uuid.UUID) error
}

// SettlementPeers calls the target's participant API. Prepare and Commit
// send the source's records: the target prepares those terms, and credits
// only a prepare whose terms equal them.
type SettlementPeers interface {
	Prepare(ctx context.Context, target string, xs []XferRecord) ([]XferVote, error)
	Commit(ctx context.Context, target string, xs []XferRecord) ([]XferVote, error)
	Abort(ctx context.Context, target string, ids []uuid.UUID) ([]XferVote, error)
}

// Settlement are the CrossRegistrySettlement workflow's activities; the
// workflow runs them as local activities (same process as the source TEG).
//
// The workflow's input names transfers; it is not trusted for anything
// else. Every activity reads the named transfers from the source's
// database and refuses the step when the record does not allow it: a
// transfer unknown to the source or addressed to another target than the
// saga's, a commit of a transfer the source did not decide to commit, an
// abort of one it did not decide to abort.
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

// records loads the source's records of ids (each once, in order) and
// refuses the batch unless every one exists and is addressed to target.
func (a *Settlement) records(ctx context.Context, target string, ids []uuid.UUID) ([]XferRecord, error) {
	seen := make(map[uuid.UUID]bool, len(ids))
	uniq := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	if len(uniq) == 0 {
		return nil, nil
	}
	recs, err := a.Ledger.Records(ctx, uniq)
	if err != nil {
		return nil, ledgerError(err)
	}
	out := make([]XferRecord, 0, len(uniq))
	for _, id := range uniq {
		r, ok := recs[id]
		switch {
		case !ok:
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("transfer %s is not a transfer of this registry", id), ErrTypeXferNotFound, nil)
		case r.Target != target:
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("transfer %s is addressed to %q, not to %q", id, r.Target, target), ErrTypeXferRefused, nil)
		}
		out = append(out, r)
	}
	return out, nil
}

// SettlementPrepare asks the target to prepare the batch's pending
// transfers with the terms the source recorded (the items' own From, To
// and AmountUnits are ignored). Transfers no longer pending (a recovered
// saga) are not prepared again: they get no vote, and the decision keeps
// what was decided.
func (a *Settlement) SettlementPrepare(ctx context.Context, in PrepareInput) ([]XferVote, error) {
	ids := make([]uuid.UUID, len(in.Items))
	for i, it := range in.Items {
		ids[i] = it.ID
	}
	recs, err := a.records(ctx, in.Target, ids)
	if err != nil {
		return nil, err
	}
	pending := recs[:0:0]
	for _, r := range recs {
		if r.Status == xferstate.Pending {
			pending = append(pending, r)
		}
	}
	if len(pending) == 0 {
		return nil, nil
	}
	v, err := a.Peers.Prepare(ctx, in.Target, pending)
	return v, peerError(err)
}

// SettlementCommit asks the target to credit the transfers the source
// decided to commit, stating the recorded terms of each.
func (a *Settlement) SettlementCommit(ctx context.Context, in IDsInput) ([]XferVote, error) {
	recs, err := a.records(ctx, in.Target, in.IDs)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Status != xferstate.Committing && r.Status != xferstate.Committed {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("transfer %s is %s on the source, not decided commit", r.ID, r.Status), ErrTypeXferRefused, nil)
		}
	}
	v, err := a.Peers.Commit(ctx, in.Target, recs)
	return v, peerError(err)
}

// SettlementAbort asks the target to drop its prepares of transfers the
// source decided to abort (a compensation).
func (a *Settlement) SettlementAbort(ctx context.Context, in IDsInput) ([]XferVote, error) {
	recs, err := a.records(ctx, in.Target, in.IDs)
	if err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(recs))
	for i, r := range recs {
		if r.Status != xferstate.Aborting && r.Status != xferstate.Aborted {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("transfer %s is %s on the source, not decided abort", r.ID, r.Status), ErrTypeXferRefused, nil)
		}
		ids[i] = r.ID
	}
	v, err := a.Peers.Abort(ctx, in.Target, ids)
	return v, peerError(err)
}

// SettlementDecide records the decisions on the source TEG. It first
// checks each decision against the source's record: every transfer must
// be addressed to the decision's target (else the whole call is refused
// and nothing is decided), and a transfer whose target reported other
// terms than the recorded ones, or none for a commit, is aborted instead
// (xferstate.CheckTerms), the mismatch recorded with it.
func (a *Settlement) SettlementDecide(ctx context.Context, ds []XferDecision) ([]XferOutcome, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
		if d.Target != ds[0].Target {
			return nil, temporal.NewNonRetryableApplicationError("one decision call covers one target", ErrTypeXferRefused, nil)
		}
	}
	recs, err := a.records(ctx, ds[0].Target, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[uuid.UUID]XferRecord, len(recs))
	for _, r := range recs {
		byID[r.ID] = r
	}
	checked := make([]XferDecision, len(ds))
	for i, d := range ds {
		p, mismatch := xferstate.CheckTerms(xferstate.Proposal{Commit: d.Commit, Reason: d.Reason, KeepHoldOnAbort: d.KeepHoldOnAbort}, byID[d.ID].Terms, d.Prepared)
		d.Commit, d.Reason, d.Mismatch = p.Commit, p.Reason, mismatch
		checked[i] = d
	}
	out, err := a.Ledger.Decide(ctx, checked)
	return out, ledgerError(err)
}

// SettlementVoidAborted releases the senders' holds of transfers whose
// abort the target acknowledged.
func (a *Settlement) SettlementVoidAborted(ctx context.Context, ids []uuid.UUID) error {
	return ledgerError(a.Ledger.VoidAborted(ctx, ids))
}

// SettlementFinish marks committed transfers done on the source TEG.
func (a *Settlement) SettlementFinish(ctx context.Context, fees map[uuid.UUID]int64) error {
	return a.Ledger.Finish(ctx, fees)
}

// ledgerError makes the source's refusals final (unknown transfers, a
// malformed request) and leaves everything else to be retried.
func ledgerError(err error) error {
	if apperr.Is(err, apperr.NotFound) || apperr.Is(err, apperr.Invalid) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeXferNotFound, err)
	}
	return err
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
