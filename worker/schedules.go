package worker

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/workflows"
)

// EnsureSchedules creates every schedule of fams for the registry when it
// does not exist yet. Idempotent across restarts: an existing schedule is
// left as it is, since an operator may have paused or edited it.
func EnsureSchedules(ctx context.Context, c client.Client, o Options, fams ...workflows.Family) error {
	for _, f := range fams {
		for _, s := range f.Schedules {
			opts := scheduleOptions(o, s)
			_, err := c.ScheduleClient().Create(ctx, opts)
			if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
				return fmt.Errorf("create schedule %s: %w", opts.ID, err)
			}
		}
	}
	return nil
}

// scheduleOptions is the Temporal schedule a declaration describes for the
// registry: the schedule and the workflows it starts share its ID.
func scheduleOptions(o Options, s workflows.Schedule) client.ScheduleOptions {
	id := s.ID(o.Registry)
	action := &client.ScheduleWorkflowAction{
		ID:                       id,
		Workflow:                 s.Workflow,
		TaskQueue:                o.TaskQueue,
		WorkflowExecutionTimeout: s.Timeout,
	}
	if s.Args != nil {
		action.Args = s.Args(workflows.ScheduleParams{Registry: o.Registry, IdempotencyRetention: o.IdempotencyRetention})
	}
	return client.ScheduleOptions{
		ID:            id,
		Spec:          client.ScheduleSpec{CronExpressions: []string{s.Cron}, TimeZoneName: "UTC"},
		CatchupWindow: s.CatchupWindow,
		Overlap:       s.Overlap,
		Action:        action,
	}
}

// Schedule IDs of a registry, for operators' tools and tests.

// IdempotencySweepScheduleID names the registry's hourly sweep schedule.
func IdempotencySweepScheduleID(registry string) string {
	return workflows.IdempotencySweepSchedule.ID(registry)
}

// HoldExpiryScheduleID names the registry's per-minute hold expiry sweep.
func HoldExpiryScheduleID(registry string) string { return workflows.HoldExpirySchedule.ID(registry) }

// StakingRewardsScheduleID names the registry's daily reward schedule.
func StakingRewardsScheduleID(registry string) string {
	return workflows.StakingRewardsSchedule.ID(registry)
}

// PrepareSweepScheduleID names the registry's per-minute participant sweep.
func PrepareSweepScheduleID(registry string) string {
	return workflows.PrepareSweepSchedule.ID(registry)
}
