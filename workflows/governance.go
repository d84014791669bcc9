package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/governance"
)

// Governance workflow names; known to running deployments, never renamed.
const (
	GovernanceTallyName      = "GovernanceTally"
	GovernanceTallySweepName = "GovernanceTallySweep"
	// governanceSweepBatch bounds the proposals one sweep starts.
	governanceSweepBatch = 100
)

// Search attributes of the tally workflow.
var (
	ProposalIDKey    = temporal.NewSearchAttributeKeyKeyword("ProposalID")
	ProposalStateKey = temporal.NewSearchAttributeKeyKeyword("ProposalState")
)

// GovernanceFamily tallies each proposal when its window ends and enacts
// a passed change after its veto window, on nodes with a TEG; a sweep
// every minute restarts the tally of any proposal whose workflow is gone.
var GovernanceFamily = Family{
	Name: "governance",
	Workflows: []Workflow{
		{Name: GovernanceTallyName, Func: GovernanceTally},
		{Name: GovernanceTallySweepName, Func: GovernanceTallySweep},
	},
	Activities:       []any{(*activities.Governance)(nil)},
	Schedules:        []Schedule{GovernanceTallySweepSchedule},
	SearchAttributes: []temporal.SearchAttributeKey{ProposalIDKey, ProposalStateKey},
	Histories:        "governance-*.json",
}

// GovernanceTallySweepSchedule runs the sweep every minute; a missed
// minute is not caught up (the next sweep finds the same proposals).
var GovernanceTallySweepSchedule = Schedule{
	IDPrefix:      "governance-tally-sweep-",
	Cron:          "* * * * *",
	CatchupWindow: time.Minute,
	Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	Workflow:      GovernanceTallySweepName,
	Args:          func(ScheduleParams) []any { return []any{GovernanceTallySweepInput{}} },
	Timeout:       5 * time.Minute,
}

// GovernanceTallyWorkflowID is the ID of registry's proposal's tally
// workflow: one per proposal, so the path that creates the proposal and
// the sweep start the same workflow. The registry is part of it because
// registries may share a namespace.
func GovernanceTallyWorkflowID(registry, proposalID string) string {
	return "governance-tally-" + registry + "-" + proposalID
}

// GovernanceTallyInput names the proposal; its times and state are read
// from the ledger.
type GovernanceTallyInput struct {
	ProposalID string
}

// governanceActivityOptions: the ledger steps are idempotent, so they are
// retried without a limit; a malformed or unknown proposal is final.
func governanceActivityOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeGovernanceInvalid},
		},
	})
}

// GovernanceTally sleeps (durable timer) to the proposal's window end,
// tallies it over its snapshot (ProposalTallied), and for a passed
// proposal with a change sleeps to the end of its veto window and enacts
// it (ProposalEnacted), unless it was vetoed meanwhile. Every step is
// once-per-proposal on the ledger, so a rerun (the sweep, a retried
// activity, a worker killed mid-step) changes nothing twice. It returns
// the proposal's final status.
func GovernanceTally(ctx workflow.Context, in GovernanceTallyInput) (governance.Status, error) {
	if in.ProposalID == "" || len(in.ProposalID) > 64 {
		return governance.Status{}, temporal.NewNonRetryableApplicationError("tally needs a proposal id", activities.ErrTypeGovernanceInvalid, nil)
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, ProposalIDKey.ValueSet(in.ProposalID))
	ctx = governanceActivityOptions(ctx)
	var a *activities.Governance
	var st governance.Status
	if err := workflow.ExecuteActivity(ctx, a.ProposalStatus, in.ProposalID).Get(ctx, &st); err != nil {
		return st, err
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, ProposalStateKey.ValueSet(st.State))
	if st.State == governance.StateOpen {
		if d := st.ClosesAt.Sub(workflow.Now(ctx)); d > 0 {
			if err := workflow.Sleep(ctx, d); err != nil {
				return st, err
			}
		}
		if err := workflow.ExecuteActivity(ctx, a.TallyProposal, in.ProposalID).Get(ctx, &st); err != nil {
			return st, err
		}
		_ = workflow.UpsertTypedSearchAttributes(ctx, ProposalStateKey.ValueSet(st.State))
	}
	if st.State == governance.StatePassed && st.HasChange {
		if st.EnactAfter != nil {
			if d := st.EnactAfter.Sub(workflow.Now(ctx)); d > 0 {
				if err := workflow.Sleep(ctx, d); err != nil {
					return st, err
				}
			}
		}
		if err := workflow.ExecuteActivity(ctx, a.EnactProposal, in.ProposalID).Get(ctx, &st); err != nil {
			return st, err
		}
		_ = workflow.UpsertTypedSearchAttributes(ctx, ProposalStateKey.ValueSet(st.State))
	}
	return st, nil
}

// GovernanceTallySweepInput bounds one sweep.
type GovernanceTallySweepInput struct {
	Limit int // proposals per sweep (default and maximum 100)
}

// GovernanceTallySweep starts the tally workflow of every proposal past
// its window and untallied, or passed past its veto window and not
// enacted (a workflow lost with its namespace, or never started because
// Temporal was down when the proposal opened). A running tally workflow
// is left alone; racing the timer is harmless because the ledger tallies
// and enacts once.
func GovernanceTallySweep(ctx workflow.Context, in GovernanceTallySweepInput) (int, error) {
	if in.Limit <= 0 || in.Limit > governanceSweepBatch {
		in.Limit = governanceSweepBatch
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 5},
	})
	var a *activities.Governance
	var ids []string
	if err := workflow.ExecuteActivity(ctx, a.DueProposals, in.Limit).Get(ctx, &ids); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var n int
	err := workflow.ExecuteActivity(ctx, a.StartTallies, ids).Get(ctx, &n)
	return n, err
}
