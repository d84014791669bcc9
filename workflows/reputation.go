package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
)

// ReputationRunName is the reputation run's registered workflow name.
const ReputationRunName = "ReputationRun"

// ReputationFamily computes the frame's trust scores on the node hosting
// its EventStore (the only node that supplies the activity).
var ReputationFamily = Family{
	Name:       "reputation",
	Workflows:  []Workflow{{Name: ReputationRunName, Func: ReputationRun}},
	Activities: []any{(*activities.ReputationRun)(nil)},
	Schedules:  []Schedule{ReputationSchedule},
	Histories:  "reputation-*.json",
}

// ReputationSchedule runs the reputation run hourly, on the hour (the
// node may set another cron at start: config.ReputationSettings.Cron). A
// missed hour is not caught up: the next run merges what it would have.
var ReputationSchedule = Schedule{
	IDPrefix:      "reputation-run-",
	Cron:          "0 * * * *",
	CatchupWindow: time.Minute,
	Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	Workflow:      ReputationRunName,
	Args:          func(ScheduleParams) []any { return []any{ReputationRunInput{}} },
	Timeout:       time.Hour,
}

// ReputationRunInput carries nothing: the run is named by its workflow ID
// (the schedule's ID plus the nominal time) and reads everything else from
// the EventStore.
type ReputationRunInput struct{}

// ReputationRun computes one reputation run: the events since the
// previous run merged into its graph, EigenTrust, the scores stored with
// the run's digests, TrustScoresPublished and any threshold breaches
// emitted, all in the activity's one transaction. The run ID is the
// workflow ID, so a retry or a restarted workflow stores the run once.
func ReputationRun(ctx workflow.Context, _ ReputationRunInput) (activities.ReputationRunResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 20 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10,
			NonRetryableErrorTypes: []string{activities.ErrTypeReputationRunInvalid},
		},
	})
	var a *activities.ReputationRun
	var res activities.ReputationRunResult
	err := workflow.ExecuteActivity(ctx, a.ComputeReputation, workflow.GetInfo(ctx).WorkflowExecution.ID).Get(ctx, &res)
	return res, err
}
