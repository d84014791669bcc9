package workflows

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// CrossRegistrySettlement names, signals and queries.
const (
	SettlementWorkflowName = "CrossRegistrySettlement"
	// SignalSagaReplay makes a parked saga (SagaState=CompensationFailed)
	// retry its compensation (POST /api/v1/admin/sagas/{id}/replay).
	SignalSagaReplay = "replay"
	// QuerySettlement returns the SettlementStatus.
	QuerySettlement = "transfers"
	// MaxSettlementBatch bounds one workflow's transfers (history size and
	// one participant call each).
	MaxSettlementBatch = 1000
	// MaxTransferIDsAttr bounds the TransferIDs search attribute: Temporal
	// limits one value's size (2 KiB by default), ~50 UUIDs.
	MaxTransferIDsAttr = 40
)

// SettlementFamily runs cross-registry transfers on nodes with a TEG: the
// coordinator's saga (started per batch by the xfer batcher) and the
// participant's sweep of stale prepares.
var SettlementFamily = Family{
	Name: "settlement",
	Workflows: []Workflow{
		{Name: SettlementWorkflowName, Func: CrossRegistrySettlement},
		{Name: PrepareSweepWorkflowName, Func: PrepareSweep},
	},
	Activities: []any{(*activities.Settlement)(nil), (*activities.PrepareSweep)(nil)},
	Schedules:  []Schedule{PrepareSweepSchedule},
	SearchAttributes: []temporal.SearchAttributeKey{
		SagaStateKey, TransferIDKey, SourceRegistryKey, TargetRegistryKey, TransferIDsKey,
	},
	Histories: "settlement-*.json",
}

// PrepareSweepSchedule runs the participant sweeper every minute.
var PrepareSweepSchedule = Schedule{
	IDPrefix:      "xfer-prepare-sweep-",
	Cron:          "* * * * *",
	CatchupWindow: time.Minute,
	Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	Workflow:      PrepareSweepWorkflowName,
	Timeout:       5 * time.Minute,
}

// SagaState values (search attribute SagaState).
const (
	SagaPreparing          = "Preparing"
	SagaCommitting         = "Committing"
	SagaCommitStalled      = "CommitStalled"
	SagaCommitted          = "Committed"
	SagaAborted            = "Aborted"
	SagaCompensationFailed = "CompensationFailed"
)

// settlementVoidAfterAck is the GetVersion change ID of "an abort keeps
// the sender's hold until the target acknowledged it" (version 1). Sagas
// started before it (DefaultVersion) void at the decision, as they did.
const settlementVoidAfterAck = "abort-voids-hold-after-target-ack"

// Search attribute keys the settlement sets (registered by the worker).
var (
	SagaStateKey      = temporal.NewSearchAttributeKeyKeyword("SagaState")
	TransferIDKey     = temporal.NewSearchAttributeKeyKeyword("TransferID")
	SourceRegistryKey = temporal.NewSearchAttributeKeyKeyword("SourceRegistry")
	TargetRegistryKey = temporal.NewSearchAttributeKeyKeyword("TargetRegistry")
	TransferIDsKey    = temporal.NewSearchAttributeKeyKeywordList("TransferIDs")
)

// SettlementWorkflowID is xsettle-<source>-<target>-<first transfer id>:
// a transfer belongs to exactly one batch, so a duplicate start (a retry
// of the same batch) is rejected by Temporal.
func SettlementWorkflowID(source, target string, first uuid.UUID) string {
	return fmt.Sprintf("xsettle-%s-%s-%s", source, target, first)
}

// SettlementSearchAttributes are set when the workflow starts (free: no
// extra history event).
func SettlementSearchAttributes(source, target string, items []activities.XferItem) temporal.SearchAttributes {
	ids := make([]string, 0, min(len(items), MaxTransferIDsAttr))
	for i := 0; i < len(items) && i < MaxTransferIDsAttr; i++ {
		ids = append(ids, items[i].ID.String())
	}
	upd := []temporal.SearchAttributeUpdate{
		SagaStateKey.ValueSet(SagaPreparing), SourceRegistryKey.ValueSet(source),
		TargetRegistryKey.ValueSet(target), TransferIDsKey.ValueSet(ids),
	}
	if len(items) > 0 {
		upd = append(upd, TransferIDKey.ValueSet(items[0].ID.String()))
	}
	return temporal.NewSearchAttributes(upd...)
}

// SettlementInput is one batch of transfers from Source to Target.
// Whoever may start workflows in the namespace can start one with any
// input, so the input only names transfers (Transfers[i].ID) and the
// target the saga talks to: the activities read parties and amounts from
// the source's record, refuse transfers addressed to another target, and
// the decision refuses any target that prepared other terms.
type SettlementInput struct {
	Source, Target string
	Transfers      []activities.XferItem
	// CompensationAttempts bounds each compensation's retries before the
	// saga parks (default 5); CommitAttempts bounds commit retries before
	// SagaState shows CommitStalled (default 5; commits retry forever).
	CompensationAttempts int32
	CommitAttempts       int32
}

// SettlementStatus is the query result: each transfer's state.
type SettlementStatus struct {
	SagaState string
	// Transfers: transfer ID → its state as the saga last saw it
	// (xferstate Pending, Prepared, Committing, Committed, Aborting or
	// Aborted; Aborting: the sender's hold stays until the target
	// acknowledged the abort).
	Transfers map[string]xferstate.Status
	Reasons   map[string]string // transfer ID → why it aborted
}

// SettlementResult summarises a finished batch.
type SettlementResult struct {
	Committed, Aborted int
}

// CrossRegistrySettlement is the coordinator of a batch of cross-registry
// transfers (SPEC §6.1), run on the source registry: the senders' holds
// were placed when the API accepted the transfers. It prepares the batch
// on the target (which may reject single transfers), records the decision
// on the source (commit: holds posted to transit; abort: the transfer is
// aborting, its hold still reserving the funds), then commits on the
// target. Before the decision any failure aborts; after a commit decision
// it only retries forward (SagaState=CommitStalled while the target
// refuses). Compensations (aborting the target's prepares) run on a
// disconnected context and, when they keep failing, park the saga in
// SagaState=CompensationFailed until SignalSagaReplay; only once the target
// acknowledged the abort are the senders' holds voided, so a parked saga's
// money stays visibly reserved, never lost.
func CrossRegistrySettlement(ctx workflow.Context, in SettlementInput) (SettlementResult, error) {
	if len(in.Transfers) == 0 || len(in.Transfers) > MaxSettlementBatch || in.Source == "" || in.Target == "" {
		return SettlementResult{}, temporal.NewNonRetryableApplicationError("a settlement needs a source, a target and 1..1000 transfers", "InvalidSettlement", nil)
	}
	if in.CompensationAttempts <= 0 {
		in.CompensationAttempts = 5
	}
	if in.CommitAttempts <= 0 {
		in.CommitAttempts = 5
	}
	st := SettlementStatus{SagaState: SagaPreparing, Transfers: map[string]xferstate.Status{}, Reasons: map[string]string{}}
	for _, t := range in.Transfers {
		st.Transfers[t.ID.String()] = xferstate.Pending
	}
	if err := workflow.SetQueryHandler(ctx, QuerySettlement, func() (SettlementStatus, error) { return st, nil }); err != nil {
		return SettlementResult{}, err
	}
	replay := workflow.GetSignalChannel(ctx, SignalSagaReplay)
	setState := func(s string) {
		if st.SagaState == s {
			return
		}
		st.SagaState = s
		_ = workflow.UpsertTypedSearchAttributes(ctx, SagaStateKey.ValueSet(s))
	}
	var a *activities.Settlement

	// Source-side steps are local Postgres transactions: retried until
	// they succeed (they are idempotent), with a bounded interval.
	localOpts := workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second,
			NonRetryableErrorTypes: []string{activities.ErrTypeXferNotFound},
		},
	}
	localCtx := workflow.WithLocalActivityOptions(ctx, localOpts)
	// Before the decision the prepare is bounded: a target that stays
	// unreachable for ~30 s aborts the batch.
	prepareCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second, ScheduleToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second, MaximumAttempts: 5,
			NonRetryableErrorTypes: []string{activities.ErrTypePeerRefused},
		},
	})
	peerCtx := func(ctx workflow.Context, attempts int32) workflow.Context {
		return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 10 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second, MaximumAttempts: attempts,
				NonRetryableErrorTypes: []string{activities.ErrTypePeerRefused},
			},
		})
	}

	ids := make([]uuid.UUID, len(in.Transfers))
	for i, t := range in.Transfers {
		ids[i] = t.ID
	}

	// 1. Prepare. The compensation (abort on the target) covers every
	// transfer from here on: a prepare that timed out may have applied.
	var votes []activities.XferVote
	prepErr := workflow.ExecuteLocalActivity(prepareCtx, a.SettlementPrepare, activities.PrepareInput{Target: in.Target, Items: in.Transfers}).Get(ctx, &votes)
	var byID map[uuid.UUID]activities.XferVote // nil when the prepare failed: nothing answered
	if prepErr == nil {
		byID = make(map[uuid.UUID]activities.XferVote, len(votes))
		for _, v := range votes {
			byID[v.ID] = v
		}
	} else {
		workflow.GetLogger(ctx).Warn("prepare failed; aborting the batch", "error", prepErr)
	}
	decisions := make([]activities.XferDecision, len(in.Transfers))
	for i, id := range ids {
		v, ok := byID[id]
		commit, reason := xferstate.Propose(ok, v.Status, v.Reason)
		// The decision activity compares the terms the target reported
		// with the source's record before it lets a commit stand.
		decisions[i] = activities.XferDecision{ID: id, Commit: commit, Reason: reason, Target: in.Target, Prepared: v.Terms}
		if commit {
			st.Transfers[id.String()] = xferstate.Prepared
		}
	}

	// 2. Decision on the source (holds posted to transit; an abort keeps
	// the hold until step 3a's acknowledgement).
	voidAfterAck := workflow.GetVersion(ctx, settlementVoidAfterAck, workflow.DefaultVersion, 1) == 1
	for i := range decisions {
		decisions[i].KeepHoldOnAbort = voidAfterAck
	}
	var outcomes []activities.XferOutcome
	if err := workflow.ExecuteLocalActivity(localCtx, a.SettlementDecide, decisions).Get(ctx, &outcomes); err != nil {
		return SettlementResult{}, err
	}
	var commitIDs, abortIDs []uuid.UUID
	for _, o := range outcomes {
		switch o.Status {
		case xferstate.Committing, xferstate.Committed:
			commitIDs = append(commitIDs, o.ID)
			st.Transfers[o.ID.String()] = xferstate.Committing
		default:
			st.Transfers[o.ID.String()] = xferstate.Aborted
			if o.Status == xferstate.Aborting {
				st.Transfers[o.ID.String()] = xferstate.Aborting
			}
			st.Reasons[o.ID.String()] = o.Reason
			// Abort on the target whatever it answered (an unreachable
			// target may have recorded the prepare).
			abortIDs = append(abortIDs, o.ID)
		}
	}

	// 3a. Compensate the aborted ones on the target, then release the
	// senders' holds. Transfers the target rejected one by one take the
	// same path: the abort call acknowledges them too.
	if len(abortIDs) > 0 {
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		for {
			err := workflow.ExecuteLocalActivity(peerCtx(dctx, in.CompensationAttempts), a.SettlementAbort, activities.IDsInput{Target: in.Target, IDs: abortIDs}).Get(dctx, nil)
			if err == nil {
				break
			}
			// Park: an operator replays once the target is back. The
			// senders' holds stay active meanwhile (funds reserved and
			// visible, the transfers aborting).
			workflow.GetLogger(ctx).Error("compensation failed; parking until replay", "error", err)
			prev := st.SagaState
			setState(SagaCompensationFailed)
			replay.Receive(dctx, nil)
			setState(prev)
		}
		if voidAfterAck {
			if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(dctx, localOpts), a.SettlementVoidAborted, abortIDs).Get(dctx, nil); err != nil {
				return SettlementResult{}, err
			}
			for _, id := range abortIDs {
				st.Transfers[id.String()] = xferstate.Aborted
			}
		}
	}

	// 3b. Commit forward on the target.
	fees := map[uuid.UUID]int64{}
	if len(commitIDs) > 0 {
		setState(SagaCommitting)
		backoff := time.Second
		for {
			var res []activities.XferVote
			err := workflow.ExecuteLocalActivity(peerCtx(ctx, in.CommitAttempts), a.SettlementCommit, activities.IDsInput{Target: in.Target, IDs: commitIDs}).Get(ctx, &res)
			if err == nil {
				err = commitAnswer(res, commitIDs, fees)
			}
			if err == nil {
				break
			}
			workflow.GetLogger(ctx).Warn("commit on the target failed; retrying", "error", err)
			// Never abort after a commit decision: stay visible and retry.
			setState(SagaCommitStalled)
			_ = workflow.Sleep(ctx, backoff)
			backoff = min(2*backoff, 30*time.Second)
		}
		if err := workflow.ExecuteLocalActivity(localCtx, a.SettlementFinish, fees).Get(ctx, nil); err != nil {
			return SettlementResult{}, err
		}
		for _, id := range commitIDs {
			st.Transfers[id.String()] = xferstate.Committed
		}
	}
	res := SettlementResult{Committed: len(commitIDs), Aborted: len(abortIDs)}
	if res.Committed > 0 {
		setState(SagaCommitted)
	} else {
		setState(SagaAborted)
	}
	return res, nil
}

// commitAnswer checks that the target committed every transfer and
// collects their fees. Any other answer (a protocol violation: a commit
// decision is final) keeps the saga retrying, visibly stalled.
func commitAnswer(res []activities.XferVote, ids []uuid.UUID, fees map[uuid.UUID]int64) error {
	byID := make(map[uuid.UUID]activities.XferVote, len(res))
	for _, v := range res {
		byID[v.ID] = v
	}
	for _, id := range ids {
		v, ok := byID[id]
		if !ok || v.Status != xferstate.Committed {
			return fmt.Errorf("target answered %q for committed transfer %s", v.Status, id)
		}
		fees[id] = v.FeeUnits
	}
	return nil
}

// PrepareSweepWorkflowName is the participant sweeper (PrepareSweepSchedule).
const PrepareSweepWorkflowName = "PrepareSweep"

// PrepareSweep settles prepares this TEG recorded for peers' transfers that
// stayed open past the sweeper's threshold: it asks their coordinators for
// the decision (SPEC §6.1; presumed abort only when the coordinator has no
// record).
func PrepareSweep(ctx workflow.Context) (int, error) {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 3},
	})
	var a *activities.PrepareSweep
	var n int
	err := workflow.ExecuteLocalActivity(ctx, a.SweepPrepares).Get(ctx, &n)
	return n, err
}
