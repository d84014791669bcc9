package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/workflows"
)

// StakingRewardsScheduleID names the registry's daily reward schedule.
func StakingRewardsScheduleID(registry string) string { return "staking-rewards-" + registry }

// StakingCatchupWindow is how far back the schedule catches up actions it
// missed (Temporal unavailable over midnight): every missed day within it
// runs once, in order (buffered, never overlapping).
const StakingCatchupWindow = 72 * time.Hour

func registerStaking(w sdkworker.Worker) {
	w.RegisterWorkflowWithOptions(workflows.StakingRewardDay, workflow.RegisterOptions{Name: workflows.StakingRewardDayName})
	w.RegisterWorkflowWithOptions(workflows.StakingRewardRun, workflow.RegisterOptions{Name: workflows.StakingRewardRunName})
	w.RegisterWorkflowWithOptions(workflows.StakingUnstakeCooldown, workflow.RegisterOptions{Name: workflows.UnstakeCooldownName})
	w.RegisterWorkflowWithOptions(workflows.StakingLockExpiry, workflow.RegisterOptions{Name: workflows.LockExpiryName})
}

// EnsureStakingSchedule creates the registry's daily reward schedule
// (cron 0 0 * * * UTC) if it does not exist; an existing one is left as
// the operator may have paused or edited it.
func EnsureStakingSchedule(ctx context.Context, c client.Client, o Options) error {
	id := StakingRewardsScheduleID(o.Registry)
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:            id,
		Spec:          client.ScheduleSpec{CronExpressions: []string{"0 0 * * *"}, TimeZoneName: "UTC"},
		CatchupWindow: StakingCatchupWindow,
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL,
		Action: &client.ScheduleWorkflowAction{
			ID: id, Workflow: workflows.StakingRewardDayName, TaskQueue: o.TaskQueue,
			Args:                     []any{workflows.RewardDayInput{Registry: o.Registry}},
			WorkflowExecutionTimeout: 24 * time.Hour,
		},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", id, err)
	}
	return nil
}
