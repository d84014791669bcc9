package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
)

// BalanceCheckpointName is the checkpoint workflow's registered name.
const BalanceCheckpointName = "BalanceCheckpoint"

// CheckpointFamily writes a TEG's balance checkpoints, which the
// EventStore reconciles its projection with (docs/adr/0015).
var CheckpointFamily = Family{
	Name:       "balance-checkpoint",
	Workflows:  []Workflow{{Name: BalanceCheckpointName, Func: BalanceCheckpoint}},
	Activities: []any{(*activities.BalanceCheckpoints)(nil)},
	Schedules:  []Schedule{BalanceCheckpointSchedule},
	Histories:  "balance-checkpoint-*.json",
}

// BalanceCheckpointSchedule ticks every minute; the activity spaces the
// checkpoints as configured (BalanceCheckpoints.Every). A missed tick is
// not caught up: the next checkpoint covers everything anyway.
var BalanceCheckpointSchedule = Schedule{
	IDPrefix:      "balance-checkpoint-",
	Cron:          "* * * * *",
	CatchupWindow: time.Minute,
	Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	Workflow:      BalanceCheckpointName,
	Timeout:       5 * time.Minute,
}

// BalanceCheckpoint writes one balance checkpoint when one is due. The
// activity is local (one short transaction on the node's own TEG) and
// retried for a minute: a relay busy numbering rows, or briefly behind,
// is the expected failure.
func BalanceCheckpoint(ctx workflow.Context) (activities.CheckpointResult, error) {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		// Reading every balance of a large ledger takes seconds.
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 15 * time.Second, MaximumAttempts: 5},
	})
	var a *activities.BalanceCheckpoints
	var res activities.CheckpointResult
	err := workflow.ExecuteLocalActivity(ctx, a.WriteBalanceCheckpoint).Get(ctx, &res)
	return res, err
}
