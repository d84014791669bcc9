package workflows

import (
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
)

// Cross-frame bridge names.
const (
	BridgeTransferWorkflowName   = "BridgeTransfer"
	BridgeRedemptionWorkflowName = "BridgeRedemption"
	// QueryBridge returns the BridgeStatus.
	QueryBridge = "bridge"
)

// Bridge SagaState values.
const (
	SagaDelivering = "Delivering" // sending the mint (or release) to the peer
	// SagaOutcomeUnknown: a delivery may have been applied and the peer
	// cannot be asked; nothing is refunded until it answers.
	SagaOutcomeUnknown = "OutcomeUnknown"
	SagaCompleted      = "Completed" // the peer applied it
	SagaRefunded       = "Refunded"  // unlocked (send) or re-minted (redeem)
)

// Search attribute keys of bridge sagas (besides SagaState, TransferID
// and TransferIDs): this frame and the peer frame.
var (
	SourceFrameKey = temporal.NewSearchAttributeKeyKeyword("SourceFrame")
	TargetFrameKey = temporal.NewSearchAttributeKeyKeyword("TargetFrame")
)

// BridgeFamily runs the cross-frame bridge on a frame's mainframe TEG.
var BridgeFamily = Family{
	Name: "bridge",
	Workflows: []Workflow{
		{Name: BridgeTransferWorkflowName, Func: BridgeTransfer},
		{Name: BridgeRedemptionWorkflowName, Func: BridgeRedemption},
		{Name: BridgeBatchWorkflowName, Func: BridgeBatch},
	},
	Activities: []any{(*activities.Bridge)(nil), (*activities.BridgeBatch)(nil)},
	// SagaState, TransferID and TransferIDs are the settlement family's
	// (each key is declared once); bridge sagas set them too.
	SearchAttributes: []temporal.SearchAttributeKey{SourceFrameKey, TargetFrameKey},
	Histories:        "bridge-*.json",
}

// BridgeWorkflowID is bridge-<transfer id>: one workflow per operation, so
// a duplicate start is refused by Temporal.
func BridgeWorkflowID(id uuid.UUID) string { return "bridge-" + id.String() }

// BridgeSearchAttributes are set at start.
func BridgeSearchAttributes(id uuid.UUID, sourceFrame, targetFrame string) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		SagaStateKey.ValueSet(SagaDelivering), TransferIDKey.ValueSet(id.String()),
		TransferIDsKey.ValueSet([]string{id.String()}),
		SourceFrameKey.ValueSet(sourceFrame), TargetFrameKey.ValueSet(targetFrame),
	)
}

// BridgeInput names the operation; its terms are read from the ledger.
type BridgeInput struct {
	TransferID uuid.UUID
	// CompensationAttempts bounds the refund's retries before the saga
	// parks in CompensationFailed (default 5).
	CompensationAttempts int32
	// MaybeDelivered says an earlier attempt outside this workflow (a
	// batch, or a run before a crash) may have reached the peer: the saga
	// then never refunds without the peer's answer.
	MaybeDelivered bool
}

// BridgeStatus is the query result.
type BridgeStatus struct {
	SagaState string
	Reason    string
}

// BridgeResult is how the operation ended.
type BridgeResult struct {
	Completed bool
	Refunded  bool
	Reason    string
}

// bridgeGrace is how long after the operation's expiry the saga waits
// before asking the peer: a delivery still on the wire arrives late and
// is refused by the expiry check, or is fenced by the question.
const bridgeGrace = 2 * time.Second

// BridgeTransfer carries a send (SPEC §6.2) after the API locked the
// amount on this frame: it delivers the mint to the target frame's
// mainframe TEG until the target answers or the operation expires. Minted:
// completed. Refused: unlocked. An answer lost on the way: it asks the
// target, which fences an ID it never minted, before anything is
// unlocked, so an operation is never both minted and unlocked.
func BridgeTransfer(ctx workflow.Context, in BridgeInput) (BridgeResult, error) {
	return bridgeSaga(ctx, in)
}

// BridgeRedemption carries a redemption after the API burned the wrapped
// tokens here: the origin frame releases from its escrow to the
// recipient, or the burn is re-minted when it definitely did not.
func BridgeRedemption(ctx workflow.Context, in BridgeInput) (BridgeResult, error) {
	return bridgeSaga(ctx, in)
}

func bridgeSaga(ctx workflow.Context, in BridgeInput) (BridgeResult, error) {
	if in.TransferID == uuid.Nil {
		return BridgeResult{}, temporal.NewNonRetryableApplicationError("a bridge saga needs a transfer ID", "InvalidBridge", nil)
	}
	if in.CompensationAttempts <= 0 {
		in.CompensationAttempts = 5
	}
	st := BridgeStatus{SagaState: SagaDelivering}
	if err := workflow.SetQueryHandler(ctx, QueryBridge, func() (BridgeStatus, error) { return st, nil }); err != nil {
		return BridgeResult{}, err
	}
	setState := func(s string) {
		if st.SagaState == s {
			return
		}
		st.SagaState = s
		_ = workflow.UpsertTypedSearchAttributes(ctx, SagaStateKey.ValueSet(s))
	}
	replay := workflow.GetSignalChannel(ctx, SignalSagaReplay)
	var a *activities.Bridge
	// Reads and writes of this TEG's own records: retried until they
	// succeed (they are idempotent). A peer call never fails the activity:
	// its outcome is the answer.
	localCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second,
			NonRetryableErrorTypes: []string{activities.ErrTypeBridgeNotFound, activities.ErrTypeXferRefused},
		},
	})
	id := in.TransferID

	complete := func(fee int64) (BridgeResult, error) {
		if err := workflow.ExecuteLocalActivity(localCtx, a.BridgeComplete, activities.BridgeCompleteInput{ID: id, FeeUnits: fee}).Get(ctx, nil); err != nil {
			return BridgeResult{}, err
		}
		setState(SagaCompleted)
		return BridgeResult{Completed: true}, nil
	}
	// The refund is the compensation: on a disconnected context, parked
	// in CompensationFailed when it keeps failing, until an operator
	// replays it.
	refund := func(reason string) (BridgeResult, error) {
		st.Reason = reason
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		rctx := workflow.WithLocalActivityOptions(dctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 15 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second,
				MaximumAttempts:        in.CompensationAttempts,
				NonRetryableErrorTypes: []string{activities.ErrTypeBridgeNotFound, activities.ErrTypeXferRefused},
			},
		})
		for {
			err := workflow.ExecuteLocalActivity(rctx, a.BridgeRefund, activities.BridgeRefundInput{ID: id, Reason: reason}).Get(dctx, nil)
			if err == nil {
				break
			}
			workflow.GetLogger(ctx).Error("bridge refund failed; parking until replay", "error", err)
			setState(SagaCompensationFailed)
			replay.Receive(dctx, nil)
			setState(SagaDelivering)
		}
		setState(SagaRefunded)
		return BridgeResult{Refunded: true, Reason: reason}, nil
	}
	finished := func(s activities.BridgeStep) (BridgeResult, error) {
		if s.Status == "completed" {
			setState(SagaCompleted)
			return BridgeResult{Completed: true}, nil
		}
		setState(SagaRefunded)
		return BridgeResult{Refunded: true}, nil
	}

	// 1. Deliver until the peer answers or the operation expires.
	maybeDelivered := in.MaybeDelivered
	backoff := 200 * time.Millisecond
	var step activities.BridgeStep
	for {
		if err := workflow.ExecuteLocalActivity(localCtx, a.BridgeDeliver, id).Get(ctx, &step); err != nil {
			return BridgeResult{}, err
		}
		switch step.Outcome {
		case activities.BridgeFinished:
			return finished(step)
		case activities.BridgeApplied:
			return complete(step.FeeUnits)
		case activities.BridgeRefused:
			return refund(step.Reason)
		case activities.BridgeUnknown:
			maybeDelivered = true
		}
		left := step.ExpiresAt.Sub(workflow.Now(ctx))
		if left <= 0 {
			break
		}
		_ = workflow.Sleep(ctx, min(backoff, left))
		backoff = min(2*backoff, 5*time.Second)
	}

	// 2. Expired: the peer refuses any late delivery. Ask it what it
	// applied; it fences an ID it never saw.
	_ = workflow.Sleep(ctx, bridgeGrace)
	backoff = time.Second
	for {
		if err := workflow.ExecuteLocalActivity(localCtx, a.BridgeAsk, id).Get(ctx, &step); err != nil {
			return BridgeResult{}, err
		}
		switch step.Outcome {
		case activities.BridgeFinished:
			return finished(step)
		case activities.BridgeApplied:
			return complete(step.FeeUnits)
		case activities.BridgeRefused:
			return refund("the peer frame did not apply it before it expired")
		}
		if !maybeDelivered {
			// No attempt ever reached the peer and it refuses the
			// operation from now on.
			return refund("the peer frame was unreachable until the operation expired")
		}
		setState(SagaOutcomeUnknown)
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(ctx, backoff), func(workflow.Future) {})
		sel.AddReceive(replay, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
		sel.Select(ctx)
		backoff = min(2*backoff, 30*time.Second)
	}
}
