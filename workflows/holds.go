package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
)

// HoldExpirySweepName is the sweep's registered workflow name.
const HoldExpirySweepName = "HoldExpirySweep"

// HoldExpiryFamily voids expired holds every minute on nodes with a TEG.
var HoldExpiryFamily = Family{
	Name:       "hold-expiry",
	Workflows:  []Workflow{{Name: HoldExpirySweepName, Func: HoldExpirySweep}},
	Activities: []any{(*activities.HoldSweeper)(nil)},
	Schedules:  []Schedule{HoldExpirySchedule},
	Histories:  "hold-expiry-*.json",
}

// HoldExpirySchedule runs the sweep every minute; a missed minute is not
// caught up (the next sweep voids what it would have).
var HoldExpirySchedule = Schedule{
	IDPrefix:      "hold-expiry-",
	Cron:          "* * * * *",
	CatchupWindow: time.Minute,
	Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	Workflow:      HoldExpirySweepName,
	Args:          func(ScheduleParams) []any { return []any{HoldExpirySweepInput{}} },
	Timeout:       5 * time.Minute,
}

// HoldExpirySweepInput bounds one sweep.
type HoldExpirySweepInput struct {
	BatchSize  int // holds per activity call (default 500)
	MaxBatches int // per run (default 20)
}

// HoldExpirySweep voids every hold past its expiry (SPEC §4: a hold voids
// itself after its expiry), in bounded batches. Scheduled every minute per
// registry; overlapping runs are skipped.
func HoldExpirySweep(ctx workflow.Context, in HoldExpirySweepInput) (int, error) {
	if in.BatchSize <= 0 || in.BatchSize > 5000 {
		in.BatchSize = 500
	}
	if in.MaxBatches <= 0 || in.MaxBatches > 1000 {
		in.MaxBatches = 20
	}
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 5},
	})
	var a *activities.HoldSweeper
	total := 0
	for i := 0; i < in.MaxBatches; i++ {
		var n int
		if err := workflow.ExecuteLocalActivity(ctx, a.ExpireHolds, in.BatchSize).Get(ctx, &n); err != nil {
			return total, err
		}
		total += n
		if n < in.BatchSize {
			break
		}
	}
	return total, nil
}
