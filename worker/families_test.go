package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// The schedules running deployments already have: IDs, cron specs,
// catch-up windows, overlap policies, workflows, arguments and timeouts
// are pinned here as literals, so a change to a declaration shows up as a
// failing test rather than as a schedule that differs between nodes
// created before and after it.
func TestScheduleOptionsAreUnchanged(t *testing.T) {
	o := Options{Registry: "alpha-main", TaskQueue: "alpha-main-main"}
	for _, c := range []struct {
		schedule workflows.Schedule
		want     client.ScheduleOptions
	}{
		{workflows.IdempotencySweepSchedule, client.ScheduleOptions{
			ID:            "idempotency-sweep-alpha-main",
			Spec:          client.ScheduleSpec{CronExpressions: []string{"17 * * * *"}, TimeZoneName: "UTC"},
			CatchupWindow: time.Hour,
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			Action: &client.ScheduleWorkflowAction{
				ID: "idempotency-sweep-alpha-main", Workflow: "IdempotencySweep", TaskQueue: "alpha-main-main",
				Args:                     []any{workflows.IdempotencySweepInput{Retention: 24 * time.Hour}},
				WorkflowExecutionTimeout: 30 * time.Minute,
			},
		}},
		{workflows.ReputationSchedule, client.ScheduleOptions{
			ID:            "reputation-run-alpha-main",
			Spec:          client.ScheduleSpec{CronExpressions: []string{"0 * * * *"}, TimeZoneName: "UTC"},
			CatchupWindow: time.Minute,
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			Action: &client.ScheduleWorkflowAction{
				ID: "reputation-run-alpha-main", Workflow: "ReputationRun", TaskQueue: "alpha-main-main",
				Args: []any{workflows.ReputationRunInput{}}, WorkflowExecutionTimeout: time.Hour,
			},
		}},
		{workflows.HoldExpirySchedule, client.ScheduleOptions{
			ID:            "hold-expiry-alpha-main",
			Spec:          client.ScheduleSpec{CronExpressions: []string{"* * * * *"}, TimeZoneName: "UTC"},
			CatchupWindow: time.Minute,
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			Action: &client.ScheduleWorkflowAction{
				ID: "hold-expiry-alpha-main", Workflow: "HoldExpirySweep", TaskQueue: "alpha-main-main",
				Args: []any{workflows.HoldExpirySweepInput{}}, WorkflowExecutionTimeout: 5 * time.Minute,
			},
		}},
		{workflows.StakingRewardsSchedule, client.ScheduleOptions{
			ID:            "staking-rewards-alpha-main",
			Spec:          client.ScheduleSpec{CronExpressions: []string{"0 0 * * *"}, TimeZoneName: "UTC"},
			CatchupWindow: 72 * time.Hour,
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL,
			Action: &client.ScheduleWorkflowAction{
				ID: "staking-rewards-alpha-main", Workflow: "StakingRewardDay", TaskQueue: "alpha-main-main",
				Args:                     []any{workflows.RewardDayInput{Registry: "alpha-main"}},
				WorkflowExecutionTimeout: 24 * time.Hour,
			},
		}},
		{workflows.PrepareSweepSchedule, client.ScheduleOptions{
			ID:            "xfer-prepare-sweep-alpha-main",
			Spec:          client.ScheduleSpec{CronExpressions: []string{"* * * * *"}, TimeZoneName: "UTC"},
			CatchupWindow: time.Minute,
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			Action: &client.ScheduleWorkflowAction{
				ID: "xfer-prepare-sweep-alpha-main", Workflow: "PrepareSweep", TaskQueue: "alpha-main-main",
				WorkflowExecutionTimeout: 5 * time.Minute,
			},
		}},
		{workflows.BalanceCheckpointSchedule, client.ScheduleOptions{
			ID:            "balance-checkpoint-alpha-main",
			Spec:          client.ScheduleSpec{CronExpressions: []string{"* * * * *"}, TimeZoneName: "UTC"},
			CatchupWindow: time.Minute,
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			Action: &client.ScheduleWorkflowAction{
				ID: "balance-checkpoint-alpha-main", Workflow: "BalanceCheckpoint", TaskQueue: "alpha-main-main",
				WorkflowExecutionTimeout: 5 * time.Minute,
			},
		}},
	} {
		require.Equal(t, c.want, scheduleOptions(o, c.schedule), c.want.ID)
	}
}

// A retention above the floor reaches the sweep's arguments; one below it
// is raised to the floor.
func TestIdempotencySweepScheduleRetention(t *testing.T) {
	for _, c := range []struct{ set, want time.Duration }{{0, 24 * time.Hour}, {time.Hour, 24 * time.Hour}, {72 * time.Hour, 72 * time.Hour}} {
		got := scheduleOptions(Options{Registry: "r", IdempotencyRetention: c.set}, workflows.IdempotencySweepSchedule)
		require.Equal(t, []any{workflows.IdempotencySweepInput{Retention: c.want}}, got.Action.(*client.ScheduleWorkflowAction).Args, "retention %s", c.set)
	}
}

func familyNames(rs []runnable) []string {
	var names []string
	for _, r := range rs {
		names = append(names, r.family.Name)
	}
	return names
}

// A family runs only when every activity struct it declares is supplied;
// nil pointers count as absent.
func TestMatchRunsFamiliesWhoseActivitiesAreSupplied(t *testing.T) {
	sweeper, holds := &activities.Sweeper{}, &activities.HoldSweeper{}
	run, skipped, err := match(workflows.Families, []any{sweeper, (*activities.Staking)(nil), holds, nil, &activities.Settlement{}})
	require.NoError(t, err)
	require.Equal(t, []string{"idempotency-sweep", "hold-expiry"}, familyNames(run))
	require.Equal(t, []any{sweeper}, run[0].activities)
	require.Equal(t, []any{holds}, run[1].activities)
	require.Equal(t, []skip{
		{family: "bond", missing: "*activities.BondMaturation"},
		{family: "staking", missing: "*activities.Staking"},
		{family: "settlement", missing: "*activities.PrepareSweep"},
		{family: "balance-checkpoint", missing: "*activities.BalanceCheckpoints"},
		{family: "dispute", missing: "*activities.Disputes"},
		{family: "reputation", missing: "*activities.ReputationRun"},
		{family: "governance", missing: "*activities.Governance"},
		{family: "governance-federation", missing: "*activities.GovernanceFederation"},
		{family: "bridge", missing: "*activities.Bridge"},
		{family: "federation-sync", missing: "*activities.FederationSync"},
	}, skipped, "settlement needs both of its structs")

	all := []any{&activities.Sweeper{}, &activities.HoldSweeper{}, &activities.BondMaturation{}, &activities.Staking{}, &activities.Settlement{}, &activities.PrepareSweep{},
		&activities.BalanceCheckpoints{}, &activities.Disputes{}, &activities.ReputationRun{}, &activities.Governance{}, &activities.GovernanceFederation{},
		&activities.Bridge{}, &activities.BridgeBatch{}, &activities.FederationSync{}}
	run, skipped, err = match(workflows.Families, all)
	require.NoError(t, err)
	require.Len(t, run, len(workflows.Families))
	require.Empty(t, skipped)
}

// A struct no family declares (its family left out of the list, or passed
// by value instead of by pointer) and a struct supplied twice stop the
// worker from starting.
func TestMatchRefusesUndeclaredAndDuplicateActivities(t *testing.T) {
	type unknownActivities struct{}
	_, _, err := match(workflows.Families, []any{&activities.Sweeper{}, &unknownActivities{}})
	require.ErrorContains(t, err, "no workflow family declares activity struct *worker.unknownActivities")
	_, _, err = match(workflows.Families, []any{activities.Sweeper{}})
	require.ErrorContains(t, err, "no workflow family declares activity struct activities.Sweeper")
	_, _, err = match(workflows.Families, []any{&activities.Sweeper{}, &activities.Sweeper{}})
	require.ErrorContains(t, err, "activity struct *activities.Sweeper supplied twice")
}
