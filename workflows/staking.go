package workflows

import (
	"errors"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// Staking workflow names, IDs and limits.
const (
	// StakingRewardDayName is what the daily schedule starts: it turns the
	// schedule's nominal time into a date and starts that date's run.
	StakingRewardDayName = "StakingRewardDay"
	// StakingRewardRunName pays one registry's rewards for one date.
	StakingRewardRunName = "StakingRewardRun"
	// UnstakeCooldownName waits out a flexible unstake's cooldown.
	UnstakeCooldownName = "StakingUnstakeCooldown"
	// LockExpiryName waits out a locked position's term and records its
	// maturity.
	LockExpiryName = "StakingLockExpiry"
	// QueryRewardRunProgress returns a run's RewardRunProgress.
	QueryRewardRunProgress = "reward-run-progress"

	DefaultRewardPageSize = 10_000
	MaxRewardPageSize     = 20_000
	// DefaultRewardPagesPerRun bounds one run's history: ~7 events per page
	// (activity scheduled/started/completed + a workflow task), so 500
	// pages stay far below Temporal's 10,240-event warning; the run then
	// continues as new with its cursor.
	DefaultRewardPagesPerRun = 500
	MaxRewardPagesPerRun     = 1000
	// unstakeSafetyNetBatch bounds the due-unstake sweep each run does.
	unstakeSafetyNetBatch = 1000
	// lockSafetyNetBatch bounds the overdue lock-expiry sweep each run does.
	lockSafetyNetBatch = 1000
	// lockSafetyNetChange versions the reward run's lock-expiry sweep:
	// runs recorded before it replay without the extra activity.
	lockSafetyNetChange = "staking-lock-safety-net"
)

// StakingFamily pays daily staking rewards and runs the per-position
// cooldown and lock-expiry timers on nodes with a TEG.
var StakingFamily = Family{
	Name: "staking",
	Workflows: []Workflow{
		{Name: StakingRewardDayName, Func: StakingRewardDay},
		{Name: StakingRewardRunName, Func: StakingRewardRun},
		{Name: UnstakeCooldownName, Func: StakingUnstakeCooldown},
		{Name: LockExpiryName, Func: StakingLockExpiry},
	},
	Activities: []any{(*activities.Staking)(nil)},
	Schedules:  []Schedule{StakingRewardsSchedule},
	Histories:  "staking-*.json",
}

// StakingCatchupWindow is how far back the reward schedule catches up
// actions it missed (Temporal unavailable over midnight): every missed day
// within it runs once, in order (buffered, never overlapping). The ledger
// starts no run for an older day (staking.CheckRunDay).
const StakingCatchupWindow = staking.RunCatchupWindow

// StakingRewardsSchedule starts the day's reward run at midnight UTC.
var StakingRewardsSchedule = Schedule{
	IDPrefix:      "staking-rewards-",
	Cron:          "0 0 * * *",
	CatchupWindow: StakingCatchupWindow,
	Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL,
	Workflow:      StakingRewardDayName,
	Args:          func(p ScheduleParams) []any { return []any{RewardDayInput{Registry: p.Registry}} },
	Timeout:       24 * time.Hour,
}

// RewardRunWorkflowID is the ID of registry's run for date (YYYY-MM-DD):
// one per (registry, date), so a day is paid by one run even when the
// schedule fires twice.
func RewardRunWorkflowID(registry, date string) string {
	return "staking-rewards-" + registry + "-" + date
}

// UnstakeCooldownWorkflowID is the ID of the cooldown of registry's
// position id's unstake request (one request per position). Position IDs
// are only unique within one TEG database, and registries may share a
// namespace (the topology allows it; tests do), so the registry is part of
// the ID: without it a second registry's start would find the first one's
// run and, as one run per ID is the rule, silently never start.
func UnstakeCooldownWorkflowID(registry string, positionID int64) string {
	return "staking-unstake-" + registry + "-" + strconv.FormatInt(positionID, 10)
}

// LockExpiryWorkflowID is the ID of the lock-expiry workflow of registry's
// locked position id (one per position; see UnstakeCooldownWorkflowID).
func LockExpiryWorkflowID(registry string, positionID int64) string {
	return "staking-lock-" + registry + "-" + strconv.FormatInt(positionID, 10)
}

// RewardDayInput configures the scheduled trigger.
type RewardDayInput struct {
	Registry    string
	PageSize    int
	PagesPerRun int
}

// RewardRunInput configures one run (and carries its cursor across
// continue-as-new).
type RewardRunInput struct {
	Date        string    // YYYY-MM-DD (UTC)
	Cutoff      time.Time // positions created before it earn the day
	PageSize    int
	PagesPerRun int
	// Continuation state.
	Started   bool
	AfterID   int64
	Pages     int   // pages paid by earlier runs of the chain
	Paid      int64 // positions paid by earlier runs
	PaidUnits int64
}

// RewardRunResult summarises a run.
type RewardRunResult struct {
	Date           string
	AlreadyRun     bool // the date's run existed: nothing started
	Pages          int
	PaidPositions  int64
	PaidUnits      int64
	DueUnits       int64
	ShortfallUnits int64
	Short          bool
	ContinuedAsNew int
}

// RewardRunProgress is the progress query's answer.
type RewardRunProgress struct {
	Date      string
	AfterID   int64
	Pages     int
	Paid      int64
	PaidUnits int64
}

// scheduledStartTime is the search attribute Temporal schedules set to an
// action's nominal time.
var scheduledStartTime = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// StakingRewardDay is the daily schedule's action. It derives the date
// from the schedule's nominal time (so a catch-up run for a missed day pays
// that day, not today) — or the start time when started by hand — and runs
// that date's StakingRewardRun as a child with ID
// staking-rewards-<registry>-<date>: a date already paid (or running) is
// reported as AlreadyRun and not started again; a failed run may be
// restarted and pays only what the failed one did not.
func StakingRewardDay(ctx workflow.Context, in RewardDayInput) (RewardRunResult, error) {
	nominal := workflow.GetInfo(ctx).WorkflowStartTime
	if t, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(scheduledStartTime); ok && !t.IsZero() {
		nominal = t
	}
	nominal = nominal.UTC()
	date := nominal.Format(staking.DateLayout)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: RewardRunWorkflowID(in.Registry, date),
		// A completed or running date is never started again; a failed or
		// terminated one may be (its pages are idempotent per position).
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		// The run outlives a terminated trigger: it is the unit that pays.
		ParentClosePolicy:        enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowExecutionTimeout: 24 * time.Hour,
	})
	var res RewardRunResult
	err := workflow.ExecuteChildWorkflow(cctx, StakingRewardRunName, RewardRunInput{
		Date: date, Cutoff: nominal, PageSize: in.PageSize, PagesPerRun: in.PagesPerRun,
	}).Get(ctx, &res)
	var started *temporal.ChildWorkflowExecutionAlreadyStartedError
	if errors.As(err, &started) {
		return RewardRunResult{Date: date, AlreadyRun: true}, nil
	}
	return res, err
}

// StakingRewardRun pays every eligible position its reward for in.Date,
// page by page (keyset by position id). The ledger makes each page
// idempotent per (date, position), so activity retries, a worker killed
// mid-page and a resumed run all pay each position exactly once. Every
// PagesPerRun pages it continues as new with its cursor, keeping each
// run's history small. At the end it releases overdue unstakes (a safety
// net for cooldown workflows that never started), marks overdue lock
// expiries (the same for lock-expiry workflows) and completes the run.
func StakingRewardRun(ctx workflow.Context, in RewardRunInput) (RewardRunResult, error) {
	if in.PageSize <= 0 || in.PageSize > MaxRewardPageSize {
		in.PageSize = DefaultRewardPageSize
	}
	if in.PagesPerRun <= 0 || in.PagesPerRun > MaxRewardPagesPerRun {
		in.PagesPerRun = DefaultRewardPagesPerRun
	}
	if _, err := time.Parse(staking.DateLayout, in.Date); err != nil {
		return RewardRunResult{}, temporal.NewNonRetryableApplicationError("reward run needs a YYYY-MM-DD date", activities.ErrTypeStakingInvalid, err)
	}
	progress := RewardRunProgress{Date: in.Date, AfterID: in.AfterID, Pages: in.Pages, Paid: in.Paid, PaidUnits: in.PaidUnits}
	if err := workflow.SetQueryHandler(ctx, QueryRewardRunProgress, func() (RewardRunProgress, error) { return progress, nil }); err != nil {
		return RewardRunResult{}, err
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// A page is one transaction over up to 20,000 positions (~1.5 s
		// for 10,000 on the benchmark machine). The timeout is also how
		// long a page lost with a killed worker waits before its retry.
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			// Rewards owed must eventually be paid: retry infrastructure
			// failures without limit; bad input stops at once.
			NonRetryableErrorTypes: []string{activities.ErrTypeStakingInvalid},
		},
	})
	var a *activities.Staking
	if !in.Started {
		var run staking.RewardRun
		if err := workflow.ExecuteActivity(ctx, a.StartRewardRun, activities.RewardRunStart{Date: in.Date, Cutoff: in.Cutoff}).Get(ctx, &run); err != nil {
			return RewardRunResult{}, err
		}
		in.Started = true
	}
	for pages := 0; ; pages++ {
		if pages >= in.PagesPerRun {
			in.AfterID, in.Pages, in.Paid, in.PaidUnits = progress.AfterID, progress.Pages, progress.Paid, progress.PaidUnits
			return RewardRunResult{}, workflow.NewContinueAsNewError(ctx, StakingRewardRunName, in)
		}
		var page staking.RewardPage
		if err := workflow.ExecuteActivity(ctx, a.PayRewardPage, activities.RewardPageRequest{Date: in.Date, AfterID: progress.AfterID, PageSize: in.PageSize}).Get(ctx, &page); err != nil {
			return RewardRunResult{}, err
		}
		progress.AfterID = page.LastID
		progress.Pages++
		progress.Paid += int64(page.Paid)
		progress.PaidUnits += page.PaidUnits
		if page.Done {
			break
		}
	}
	if err := workflow.ExecuteActivity(ctx, a.CompleteDueUnstakes, unstakeSafetyNetBatch).Get(ctx, nil); err != nil {
		return RewardRunResult{}, err
	}
	if workflow.GetVersion(ctx, lockSafetyNetChange, workflow.DefaultVersion, 1) == 1 {
		// The same safety net for lock-expiry workflows that never started.
		if err := workflow.ExecuteActivity(ctx, a.MatureDueLocks, lockSafetyNetBatch).Get(ctx, nil); err != nil {
			return RewardRunResult{}, err
		}
	}
	var run staking.RewardRun
	if err := workflow.ExecuteActivity(ctx, a.FinishRewardRun, in.Date).Get(ctx, &run); err != nil {
		return RewardRunResult{}, err
	}
	return RewardRunResult{
		Date: in.Date, Pages: progress.Pages, PaidPositions: run.PaidPositions, PaidUnits: run.PaidUnits,
		DueUnits: run.DueUnits, ShortfallUnits: run.ShortfallUnits, Short: run.Short(),
	}, nil
}

// UnstakeCooldownInput names the request and when its cooldown ends.
type UnstakeCooldownInput struct {
	PositionID int64
	ReleaseAt  time.Time
}

// StakingUnstakeCooldown waits (a durable timer) until the request's
// cooldown ends, then returns the position's funds to its owner's liquid
// balance. The release is idempotent, so a duplicate or reset workflow
// never releases twice; a position slashed meanwhile has nothing left to
// release.
func StakingUnstakeCooldown(ctx workflow.Context, in UnstakeCooldownInput) error {
	if in.PositionID <= 0 || in.ReleaseAt.IsZero() {
		return temporal.NewNonRetryableApplicationError("cooldown needs a position and a release time", activities.ErrTypeStakingInvalid, nil)
	}
	if d := in.ReleaseAt.Sub(workflow.Now(ctx)); d > 0 {
		if err := workflow.Sleep(ctx, d); err != nil {
			return err
		}
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeStakingInvalid},
		},
	})
	var a *activities.Staking
	return workflow.ExecuteActivity(ctx, a.ReleaseUnstake, in.PositionID).Get(ctx, nil)
}

// LockExpiryInput names a locked position and its term end.
type LockExpiryInput struct {
	PositionID int64
	UnlockAt   time.Time
}

// StakingLockExpiry waits (a durable timer) until a locked position's term
// ends, then records its maturity on the ledger (the lock lifts; the owner
// may unstake at once; event StakeMatured). The ledger decides early
// unstakes by the term end itself, so this workflow never gates a
// withdrawal; the mark is idempotent per position, so a duplicate or reset
// workflow writes it once, and a position unstaked or slashed meanwhile is
// left alone.
func StakingLockExpiry(ctx workflow.Context, in LockExpiryInput) error {
	if in.PositionID <= 0 || in.UnlockAt.IsZero() {
		return temporal.NewNonRetryableApplicationError("lock expiry needs a position and a term end", activities.ErrTypeStakingInvalid, nil)
	}
	if d := in.UnlockAt.Sub(workflow.Now(ctx)); d > 0 {
		if err := workflow.Sleep(ctx, d); err != nil {
			return err
		}
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeStakingInvalid},
		},
	})
	var a *activities.Staking
	return workflow.ExecuteActivity(ctx, a.MatureLock, in.PositionID).Get(ctx, nil)
}
