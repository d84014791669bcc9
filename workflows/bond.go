package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// BondMaturation names and signals.
const (
	BondWorkflowName = "BondMaturation"
	// SignalBondDeregistered tells the workflow the agent left before
	// maturity: the bond is forfeited to the treasury.
	SignalBondDeregistered = "agent-deregistered"
	// QueryBondStatus returns the workflow's BondStatus.
	QueryBondStatus = "bond-status"
	// MaxBondChecks bounds one run's history; the workflow continues as new
	// after this many unsuccessful checks.
	MaxBondChecks = 100
	// bondSignalConfirmed is the GetVersion change ID of "a deregistration
	// signal forfeits only once the registry confirms it" (version 1).
	// Histories recorded before (DefaultVersion) forfeited on the signal
	// alone and replay that way.
	bondSignalConfirmed = "bond-forfeit-confirms-deregistration"
	// ReasonUnconfirmedSignal is the status's LastReason after a
	// deregistration signal the registry did not confirm.
	ReasonUnconfirmedSignal = "deregistration signal not confirmed by the registry; ignored"
)

// BondFamily holds agents' reputation bonds on nodes with the registry and
// TEG roles; its workflows are started per agent, not scheduled.
var BondFamily = Family{
	Name:             "bond",
	Workflows:        []Workflow{{Name: BondWorkflowName, Func: BondMaturation}},
	Activities:       []any{(*activities.BondMaturation)(nil)},
	SearchAttributes: []temporal.SearchAttributeKey{AgentDIDKey},
	Histories:        "bond-*.json",
}

// AgentDIDKey is the search attribute naming a bond's agent.
var AgentDIDKey = temporal.NewSearchAttributeKeyKeyword("AgentDID")

// BondWorkflowID is the workflow ID of an agent's bond: one per DID, so a
// second start is refused by Temporal and the ledger keys derive from it.
func BondWorkflowID(did string) string { return "bond-" + did }

// BondInput configures one agent's bond maturation (whitepaper §5.5).
type BondInput struct {
	AgentDID         string
	DeveloperAccount string // the wallet the bond came from ("dev:<id>")
	AmountUnits      int64
	MinAge           time.Duration // durable timer before the first check (default 30 days)
	MinTransfers     int64         // activity criterion (default 10)
	MinTrust         int64         // trust-score floor in basis points (0..10000)
	RecheckEvery     time.Duration // wait between failed checks (default 7 days)
	// Checks counts checks done by earlier runs (continue-as-new).
	Checks int
}

// Bond outcomes.
const (
	BondLocked    = "locked"
	BondMatured   = "matured"
	BondForfeited = "forfeited"
	BondVoided    = "voided" // the agent was never created; bond returned
)

// BondStatus is the query result.
type BondStatus struct {
	State                string
	Checks               int
	LastReason           string
	MaturesNoEarlierThan time.Time
}

// BondMaturation holds an agent's reputation bond: it waits a durable timer
// for the minimum age, then checks activity and trust; it matures the bond
// (locked_bond → liquid, ReputationBondMatured) when both pass, or re-checks
// later. A deregistration signal at any point makes it ask the registry;
// once the registry confirms the agent is deregistered the bond is
// forfeited to the treasury (ReputationBondForfeited). A signal the
// registry does not confirm (anyone who may signal workflows can send
// one) is ignored and the wait goes on to the same deadline. The ledger
// activities are idempotent by keys derived from the DID, so retries and
// resets never move money twice; the amounts they move are the ledger's.
func BondMaturation(ctx workflow.Context, in BondInput) (string, error) {
	if in.MinAge <= 0 {
		in.MinAge = 30 * 24 * time.Hour
	}
	if in.RecheckEvery <= 0 {
		in.RecheckEvery = 7 * 24 * time.Hour
	}
	if in.MinTransfers <= 0 {
		in.MinTransfers = 10
	}
	if in.AgentDID == "" || in.AmountUnits <= 0 {
		return "", temporal.NewNonRetryableApplicationError("bond needs an agent DID and a positive amount", "InvalidBond", nil)
	}
	status := BondStatus{State: BondLocked, Checks: in.Checks, MaturesNoEarlierThan: workflow.GetInfo(ctx).WorkflowStartTime.Add(in.MinAge)}
	if err := workflow.SetQueryHandler(ctx, QueryBondStatus, func() (BondStatus, error) { return status, nil }); err != nil {
		return "", err
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, AgentDIDKey.ValueSet(in.AgentDID))

	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			// Money must eventually move once decided: keep retrying
			// infrastructure failures; business refusals stop at once.
			NonRetryableErrorTypes: []string{activities.ErrTypeBondNotFound},
		},
	})
	var a *activities.BondMaturation
	deregistered := workflow.GetSignalChannel(ctx, SignalBondDeregistered)

	// wait sleeps d, or returns true early when the agent deregisters.
	wait := func(d time.Duration) (bool, error) { //nolint:unparam
		timerCtx, cancel := workflow.WithCancel(ctx)
		defer cancel()
		timer := workflow.NewTimer(timerCtx, d)
		gotSignal := false
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(workflow.Future) {})
		sel.AddReceive(deregistered, func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			for c.ReceiveAsync(nil) { // a burst of signals is one question to the registry
			}
			gotSignal = true
		})
		sel.Select(ctx)
		return gotSignal, nil
	}
	// confirmed asks the registry whether the agent really deregistered.
	confirmed := func() (bool, error) {
		if workflow.GetVersion(ctx, bondSignalConfirmed, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			return true, nil // recorded when the signal alone forfeited
		}
		var ok bool
		err := workflow.ExecuteLocalActivity(ctx, a.ConfirmDeregistered, in.AgentDID).Get(ctx, &ok)
		return ok, err
	}
	// waitFor waits d, or returns true early once the agent deregistered;
	// an unconfirmed signal does not shorten or restart the wait.
	waitFor := func(d time.Duration) (bool, error) {
		deadline := workflow.Now(ctx).Add(d)
		for {
			left := deadline.Sub(workflow.Now(ctx))
			if left <= 0 {
				return false, nil
			}
			signalled, err := wait(left)
			if err != nil || !signalled {
				return false, err
			}
			ok, err := confirmed()
			if err != nil || ok {
				return ok, err
			}
			status.LastReason = ReasonUnconfirmedSignal
			workflow.GetLogger(ctx).Warn("deregistration signal for an agent the registry does not show deregistered; ignored", "did", in.AgentDID)
		}
	}
	forfeit := func() (string, error) {
		// Runs on a disconnected context so a cancellation of the workflow
		// still settles the money it holds.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		if err := workflow.ExecuteLocalActivity(dctx, a.ForfeitBond, activities.BondMove{AgentDID: in.AgentDID, AmountUnits: in.AmountUnits, IdempotencyKey: "bond-forfeit-" + in.AgentDID}).Get(dctx, nil); err != nil {
			return "", err
		}
		status.State = BondForfeited
		return BondForfeited, nil
	}

	first := in.MinAge
	if in.Checks > 0 {
		first = in.RecheckEvery
	}
	if signalled, err := waitFor(first); err != nil {
		return "", err
	} else if signalled {
		return forfeit()
	}
	for {
		var check activities.BondCheckResult
		err := workflow.ExecuteLocalActivity(ctx, a.CheckBondCriteria, activities.BondCheck{AgentDID: in.AgentDID, MinTransfers: in.MinTransfers, MinTrust: in.MinTrust}).Get(ctx, &check)
		if err != nil {
			return "", err
		}
		status.Checks++
		status.LastReason = check.Reason
		switch registry.BondNext(check.Agent, check.Eligible) {
		case registry.BondForfeit:
			// The deregistration signal was lost (Temporal was down when
			// the registry sent it); the check is the safety net.
			return forfeit()
		case registry.BondVoid:
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			if err := workflow.ExecuteLocalActivity(dctx, a.VoidBond, activities.BondMove{AgentDID: in.AgentDID, DeveloperAccount: in.DeveloperAccount, AmountUnits: in.AmountUnits, IdempotencyKey: "bond-void-" + in.AgentDID}).Get(dctx, nil); err != nil {
				return "", err
			}
			status.State = BondVoided
			return BondVoided, nil
		case registry.BondMature:
			if err := workflow.ExecuteLocalActivity(ctx, a.MatureBond, activities.BondMove{AgentDID: in.AgentDID, AmountUnits: in.AmountUnits, IdempotencyKey: "bond-mature-" + in.AgentDID}).Get(ctx, nil); err != nil {
				return "", err
			}
			status.State = BondMatured
			return BondMatured, nil
		case registry.BondWait:
		}
		if status.Checks-in.Checks >= MaxBondChecks {
			in.Checks = status.Checks
			return "", workflow.NewContinueAsNewError(ctx, BondMaturation, in)
		}
		if signalled, err := waitFor(in.RecheckEvery); err != nil {
			return "", err
		} else if signalled {
			return forfeit()
		}
	}
}
