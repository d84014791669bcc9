package workflows

import (
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/dispute"
)

// Names known to running deployments: never rename.
const (
	// DisputeName carries one dispute's deadlines and applies its ruling.
	DisputeName = "Dispute"
	// DisputeRespondedSignal: the respondent's answer is recorded.
	DisputeRespondedSignal = "dispute-responded"
	// DisputeRuledSignal: the tribunal's ruling is recorded.
	DisputeRuledSignal = "dispute-ruled"
)

// DisputeFamily is the dispute flow: one workflow per dispute.
var DisputeFamily = Family{
	Name:       "dispute",
	Workflows:  []Workflow{{Name: DisputeName, Func: Dispute}},
	Activities: []any{(*activities.Disputes)(nil)},
	Histories:  "dispute-*.json",
}

// DisputeWorkflowID is the workflow ID of dispute id: one workflow per
// dispute, ever (the namespace is the registry's).
func DisputeWorkflowID(disputeID string) string { return "dispute-" + disputeID }

// DisputeInput names the dispute and its two deadlines, as recorded when
// it opened. The deadlines only time the workflow's steps: each step
// reads the dispute's row and the ledger refuses a step before its
// deadline, so a wrong deadline here delays a step but never advances it.
type DisputeInput struct {
	DisputeID string
	RespondBy time.Time
	RuleBy    time.Time
}

// DisputeResult is how the dispute ended.
type DisputeResult struct {
	DisputeID string
	Status    dispute.Status // ruled or lapsed
	Defaulted bool           // the respondent let the response window pass
	Outcome   dispute.Outcome
	// What the ruling moved: compensation minted, or the fee charged.
	CompensationUnits int64
	FeeUnits          int64
}

// Dispute waits for the respondent until RespondBy and for the tribunal
// until RuleBy, then applies the ruling once or lets the dispute lapse.
// The written-down outcomes of the deadlines (package dispute, ADR 0023):
// no response by RespondBy puts the respondent in default and the dispute
// goes to the tribunal anyway; no ruling by RuleBy lapses it with no
// consequence. A ruling may arrive at any time before RuleBy, also during
// the response window. Signals are prompts only: every decision is read
// back from the ledger, whose row locks decide a ruling racing a
// deadline, so the ruling is applied exactly once whichever comes first.
func Dispute(ctx workflow.Context, in DisputeInput) (DisputeResult, error) {
	if _, err := uuid.Parse(in.DisputeID); err != nil || in.RespondBy.IsZero() || in.RuleBy.Before(in.RespondBy) {
		return DisputeResult{}, temporal.NewNonRetryableApplicationError("a dispute needs its id and deadlines (respond_by ≤ rule_by)", activities.ErrTypeDisputeInvalid, err)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			// A deadline step or a settlement must eventually happen:
			// retry without limit (a compensation waits out an audit that
			// is not clean); only a refusal stops.
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeDisputeInvalid},
		},
	})
	var a *activities.Disputes
	res := DisputeResult{DisputeID: in.DisputeID, Status: dispute.AwaitingResponse}
	responded := workflow.GetSignalChannel(ctx, DisputeRespondedSignal)
	ruled := workflow.GetSignalChannel(ctx, DisputeRuledSignal)
	var isRuled bool

	// The response window.
	if fired := waitUntil(ctx, in.RespondBy, ruled, &isRuled, responded); fired {
		var st dispute.State
		if err := workflow.ExecuteActivity(ctx, a.CloseDisputeResponse, in.DisputeID).Get(ctx, &st); err != nil {
			return res, err
		}
		res.Status, res.Defaulted = st.Status, st.Defaulted
		isRuled = st.Status == dispute.Ruled
	}
	// The ruling window.
	if !isRuled {
		res.Status = dispute.AwaitingRuling
		if fired := waitUntil(ctx, in.RuleBy, ruled, &isRuled, nil); fired {
			var st dispute.State
			if err := workflow.ExecuteActivity(ctx, a.LapseDispute, in.DisputeID).Get(ctx, &st); err != nil {
				return res, err
			}
			res.Status, res.Defaulted = st.Status, res.Defaulted || st.Defaulted
			if st.Status != dispute.Ruled {
				return res, nil // lapsed: no consequence
			}
		}
	}
	var s dispute.Settlement
	if err := workflow.ExecuteActivity(ctx, a.SettleDispute, in.DisputeID).Get(ctx, &s); err != nil {
		return res, err
	}
	res.Status, res.Outcome, res.CompensationUnits, res.FeeUnits = dispute.Ruled, s.Outcome, s.CompensationUnits, s.FeeUnits
	return res, nil
}

// waitUntil blocks until deadline (true) or a ruling signal (false, and
// *isRuled is set); a signal on also (the response) ends the wait too,
// returning false. A deadline already past fires at once without a timer.
func waitUntil(ctx workflow.Context, deadline time.Time, ruled workflow.ReceiveChannel, isRuled *bool, also workflow.ReceiveChannel) bool {
	d := deadline.Sub(workflow.Now(ctx))
	if d <= 0 {
		return true
	}
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	fired := false
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(workflow.NewTimer(timerCtx, d), func(workflow.Future) { fired = true })
	sel.AddReceive(ruled, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		*isRuled = true
	})
	if also != nil {
		sel.AddReceive(also, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
	}
	sel.Select(ctx)
	return fired
}
