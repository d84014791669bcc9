package workflows

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
)

// BridgeBatchWorkflowName carries a batch of bridge operations with one
// peer frame.
const BridgeBatchWorkflowName = "BridgeBatch"

// MaxBridgeBatch bounds one batch (one peer call, one history).
const MaxBridgeBatch = 500

// BridgeBatchWorkflowID is bridge-batch-<first transfer id>: a transfer
// belongs to one batch, so a duplicate start is refused.
func BridgeBatchWorkflowID(first uuid.UUID) string { return "bridge-batch-" + first.String() }

// BridgeBatchSearchAttributes are set at start.
func BridgeBatchSearchAttributes(sourceFrame, targetFrame string, ids []uuid.UUID) temporal.SearchAttributes {
	list := make([]string, 0, min(len(ids), MaxTransferIDsAttr))
	for i := 0; i < len(ids) && i < MaxTransferIDsAttr; i++ {
		list = append(list, ids[i].String())
	}
	upd := []temporal.SearchAttributeUpdate{SagaStateKey.ValueSet(SagaDelivering), TransferIDsKey.ValueSet(list),
		SourceFrameKey.ValueSet(sourceFrame), TargetFrameKey.ValueSet(targetFrame)}
	if len(ids) > 0 {
		upd = append(upd, TransferIDKey.ValueSet(ids[0].String()))
	}
	return temporal.NewSearchAttributes(upd...)
}

// BridgeBatchInput names the operations; the frames label the children.
type BridgeBatchInput struct {
	SourceFrame, TargetFrame string
	TransferIDs              []uuid.UUID
}

// BridgeBatchResult counts how the batch went.
type BridgeBatchResult struct {
	Completed, HandedOver int
}

// BridgeBatch is the fast path of the bridge under load: one call
// delivers every operation of the batch to the peer frame and one
// transaction completes those the peer applied. Every other operation
// (refused, unanswered, or unknown) is handed to its own BridgeTransfer or
// BridgeRedemption workflow (a child, ID bridge-<transfer id>), told
// whether the batch's delivery may have reached the peer, which carries
// it to its end exactly as it would have alone.
func BridgeBatch(ctx workflow.Context, in BridgeBatchInput) (BridgeBatchResult, error) {
	if len(in.TransferIDs) == 0 || len(in.TransferIDs) > MaxBridgeBatch || in.TargetFrame == "" {
		return BridgeBatchResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("a bridge batch needs a target frame and 1..%d transfers", MaxBridgeBatch), "InvalidBridge", nil)
	}
	state := SagaDelivering
	setState := func(s string) {
		if state != s {
			state = s
			_ = workflow.UpsertTypedSearchAttributes(ctx, SagaStateKey.ValueSet(s))
		}
	}
	localCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 20 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second,
		},
	})
	var a *activities.BridgeBatch
	var steps []activities.BridgeItemStep
	if err := workflow.ExecuteLocalActivity(localCtx, a.BridgeDeliverBatch,
		activities.BridgeBatchInput{Peer: in.TargetFrame, IDs: in.TransferIDs}).Get(ctx, &steps); err != nil {
		return BridgeBatchResult{}, err
	}
	fees := map[uuid.UUID]int64{}
	var rest []activities.BridgeItemStep
	for _, s := range steps {
		switch s.Outcome {
		case activities.BridgeApplied:
			fees[s.ID] = s.FeeUnits
		case activities.BridgeFinished:
		default:
			rest = append(rest, s)
		}
	}
	if len(fees) > 0 {
		if err := workflow.ExecuteLocalActivity(localCtx, a.BridgeCompleteBatch, fees).Get(ctx, nil); err != nil {
			return BridgeBatchResult{}, err
		}
	}
	res := BridgeBatchResult{Completed: len(fees), HandedOver: len(rest)}
	if len(rest) == 0 {
		setState(SagaCompleted)
		return res, nil
	}
	// Children: each operation's own saga. The kind (send or redeem) is
	// read by the child from the record; the workflow type only names it
	// in the UI, so a send's saga is used for both.
	var futures []workflow.ChildWorkflowFuture
	for _, s := range rest {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:            BridgeWorkflowID(s.ID),
			ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			TypedSearchAttributes: BridgeSearchAttributes(s.ID, in.SourceFrame, in.TargetFrame),
		})
		futures = append(futures, workflow.ExecuteChildWorkflow(cctx, BridgeTransferWorkflowName, BridgeInput{
			TransferID: s.ID, MaybeDelivered: s.Outcome != activities.BridgeUndelivered,
		}))
	}
	for i, f := range futures {
		// A child that already runs (started by recovery) carries the
		// operation on its own: not waiting for it is right.
		if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Info("bridge operation already carried by its own workflow", "transfer", rest[i].ID, "error", err)
			continue
		}
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("bridge operation's workflow failed", "transfer", rest[i].ID, "error", err)
		}
	}
	setState(SagaCompleted)
	return res, nil
}
