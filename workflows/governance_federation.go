package workflows

import (
	"errors"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/governance"
)

// GovernanceFederationTallyName is the federation tally workflow's name;
// known to running deployments, never renamed.
const GovernanceFederationTallyName = "GovernanceFederationTally"

// federationCollectRound is the pause between two rounds of asking the
// peers that have not answered yet.
const federationCollectRound = 5 * time.Second

// GovernanceFederationFamily runs, on the originating registry, the tally
// of each federation proposal: announce to the peers, wait for the
// window's end, collect the peers' signed local tallies until the
// collection deadline, aggregate, and enact a passed change after its veto
// window unless the mainframe's operator vetoed it.
var GovernanceFederationFamily = Family{
	Name: "governance-federation",
	Workflows: []Workflow{
		{Name: GovernanceFederationTallyName, Func: GovernanceFederationTally},
	},
	Activities: []any{(*activities.GovernanceFederation)(nil)},
	Histories:  "govfed-*.json",
}

// GovernanceFederationTallyWorkflowID is the ID of the tally workflow of
// federation proposal id originated by registry.
func GovernanceFederationTallyWorkflowID(registry, id string) string {
	return "governance-federation-tally-" + registry + "-" + id
}

// GovernanceFederationTally drives federation proposal in.ProposalID at
// its origin. Every ledger step is idempotent, so a rerun (a retried
// activity, a restarted workflow) repeats nothing: peers already announced
// or collected are skipped, and the tally and enactment happen once. A
// peer that cannot be reached until the collection deadline, or whose
// tally is refused, is tallied as missing (the ledger records which).
func GovernanceFederationTally(ctx workflow.Context, in GovernanceTallyInput) (governance.Status, error) {
	if in.ProposalID == "" || len(in.ProposalID) > 64 {
		return governance.Status{}, temporal.NewNonRetryableApplicationError("tally needs a proposal id", activities.ErrTypeGovernanceInvalid, nil)
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, ProposalIDKey.ValueSet(in.ProposalID))
	ctx = governanceActivityOptions(ctx)
	var a *activities.GovernanceFederation
	var fs activities.FederationStatus
	if err := workflow.ExecuteActivity(ctx, a.FederationProposalStatus, in.ProposalID).Get(ctx, &fs); err != nil {
		return fs.Status, err
	}
	st := fs.Status
	_ = workflow.UpsertTypedSearchAttributes(ctx, ProposalStateKey.ValueSet(st.State))
	if st.State == governance.StateOpen {
		if d := fs.ClosesAt.Sub(workflow.Now(ctx)); d > 0 {
			// Announce to every peer not announced yet, each retried until
			// the window ends; one that never hears of it is missing later.
			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				StartToCloseTimeout: 20 * time.Second, ScheduleToCloseTimeout: d,
				RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second,
					NonRetryableErrorTypes: []string{activities.ErrTypeGovernanceInvalid}},
			})
			var fs2 []workflow.Future
			for _, p := range fs.Peers {
				if !slices.Contains(fs.Announced, p) {
					fs2 = append(fs2, workflow.ExecuteActivity(actx, a.AnnounceToPeer, in.ProposalID, p))
				}
			}
			for _, f := range fs2 {
				_ = f.Get(ctx, nil)
			}
			if d := fs.ClosesAt.Sub(workflow.Now(ctx)); d > 0 {
				if err := workflow.Sleep(ctx, d); err != nil {
					return st, err
				}
			}
		}
		// Collect in rounds until every peer answered or the deadline.
		cctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 20 * time.Second,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		var pending []string
		for _, p := range fs.Peers {
			if !slices.Contains(fs.Collected, p) {
				pending = append(pending, p)
			}
		}
		for len(pending) > 0 {
			futures := make([]workflow.Future, len(pending))
			for i, p := range pending {
				futures[i] = workflow.ExecuteActivity(cctx, a.CollectFromPeer, in.ProposalID, p)
			}
			var next []string
			for i, f := range futures {
				err := f.Get(ctx, nil)
				var ae *temporal.ApplicationError
				switch {
				case err == nil:
				case errors.As(err, &ae) && ae.NonRetryable():
					// Refused for good (or its tally did not verify): missing.
				default:
					next = append(next, pending[i])
				}
			}
			pending = next
			left := fs.CollectUntil.Sub(workflow.Now(ctx))
			if len(pending) == 0 || left <= 0 {
				break
			}
			if err := workflow.Sleep(ctx, min(left, federationCollectRound)); err != nil {
				return st, err
			}
		}
		if err := workflow.ExecuteActivity(ctx, a.TallyFederation, in.ProposalID).Get(ctx, &st); err != nil {
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
		if err := workflow.ExecuteActivity(ctx, a.EnactFederation, in.ProposalID).Get(ctx, &st); err != nil {
			return st, err
		}
		_ = workflow.UpsertTypedSearchAttributes(ctx, ProposalStateKey.ValueSet(st.State))
	}
	return st, nil
}
