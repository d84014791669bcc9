package node

import (
	"context"
	"errors"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/staking"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// stakingWorkflows starts unstake cooldown and lock-expiry workflows on
// the registry's task queue (ledgerapi.Cooldowns, ledgerapi.LockExpiries).
type stakingWorkflows struct {
	temporal  client.Client
	taskQueue string
}

// StartCooldown starts staking-unstake-<position>; one per position, ever:
// a running or finished one counts as started.
func (s stakingWorkflows) StartCooldown(ctx context.Context, positionID int64, releaseAt time.Time) error {
	return s.startOnce(ctx, workflows.UnstakeCooldownWorkflowID(positionID), workflows.UnstakeCooldownName,
		workflows.UnstakeCooldownInput{PositionID: positionID, ReleaseAt: releaseAt})
}

// StartLockExpiry starts staking-lock-<position>; one per position, ever.
func (s stakingWorkflows) StartLockExpiry(ctx context.Context, positionID int64, unlockAt time.Time) error {
	return s.startOnce(ctx, workflows.LockExpiryWorkflowID(positionID), workflows.LockExpiryName,
		workflows.LockExpiryInput{PositionID: positionID, UnlockAt: unlockAt})
}

// startOnce starts workflow id unless it runs or ran: both count as
// started (the ledger side of each is idempotent per position anyway).
func (s stakingWorkflows) startOnce(ctx context.Context, id, name string, arg any) error {
	_, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                s.taskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, name, arg)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// mountStaking serves the staking routes on nodes with a TEG and
// registers the staking metrics.
func (n *Node) mountStaking(v1 *gin.RouterGroup) {
	if n.Ledger == nil {
		return
	}
	n.Metrics.MustRegister(ledgerstore.StakingCollectors()...)
	wf := stakingWorkflows{temporal: n.Temporal, taskQueue: n.opts.Registry.TaskQueue()}
	ledgerapi.NewStaking(ledgerapi.StakingOptions{
		Store: n.Ledger, Idempotency: n.ledgerIdem, Auth: n.Auth, Now: n.opts.Now, Curve: staking.DefaultCurve,
		Cooldowns: wf, Locks: wf,
	}).Mount(v1)
}

// stakingActivities are the worker's staking activities (nil without a TEG).
func (n *Node) stakingActivities() *activities.Staking {
	if n.Ledger == nil {
		return nil
	}
	return &activities.Staking{Ledger: n.Ledger, Curve: staking.DefaultCurve}
}
