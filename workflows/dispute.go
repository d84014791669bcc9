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
	// DisputeRespondedSignal: the respondent's answer is recorded. Sent
	// (with start) so that a dispute whose workflow never started gets it;
	// the workflow reads the answer at the response deadline.
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

// Dispute waits out the response window and then the ruling window,
// then applies the ruling once or lets the dispute lapse. The written-down
// outcomes of the deadlines (package dispute, ADR 0023): at RespondBy a
// dispute still unanswered puts the respondent in default and goes to the
// tribunal anyway; at RuleBy a dispute still unruled lapses with no
// consequence. A ruling may come at any time before RuleBy, also during
// the response window.
//
// Signals are prompts, never facts: every step reads the dispute's row
// (whose lock decides a ruling racing a deadline), so the ruling is
// applied exactly once whichever comes first, a ruling whose signal was
// lost is found at the next deadline, and a ruling signal with no ruling
// behind it only makes the workflow look and wait on. The answer needs no
// signal: the response deadline step reads it (a dispute-responded signal
// is accepted and ignored).
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
	ruled := workflow.GetSignalChannel(ctx, DisputeRuledSignal)
	var isRuled, responseClosed bool
	for {
		switch {
		case isRuled:
			var s dispute.Settlement
			if err := workflow.ExecuteActivity(ctx, a.SettleDispute, in.DisputeID).Get(ctx, &s); err != nil {
				return res, err
			}
			res.Status = s.Status
			switch s.Status {
			case dispute.Ruled:
				res.Outcome, res.CompensationUnits, res.FeeUnits = s.Outcome, s.CompensationUnits, s.FeeUnits
				return res, nil
			case dispute.Lapsed:
				return res, nil
			}
			// Prompted, but not ruled: wait on.
			isRuled, responseClosed = false, s.Status != dispute.AwaitingResponse
		case !responseClosed:
			if waitUntil(ctx, in.RespondBy, ruled, &isRuled) {
				var st dispute.State
				if err := workflow.ExecuteActivity(ctx, a.CloseDisputeResponse, in.DisputeID).Get(ctx, &st); err != nil {
					return res, err
				}
				res.Status, res.Defaulted, responseClosed = st.Status, st.Defaulted, true
				isRuled = st.Status == dispute.Ruled
			}
		default:
			if waitUntil(ctx, in.RuleBy, ruled, &isRuled) {
				var st dispute.State
				if err := workflow.ExecuteActivity(ctx, a.LapseDispute, in.DisputeID).Get(ctx, &st); err != nil {
					return res, err
				}
				res.Status = st.Status
				if st.Status != dispute.Ruled {
					return res, nil // lapsed: no consequence
				}
				isRuled = true
			}
		}
	}
}

// waitUntil blocks until deadline (true) or a ruling signal (false, and
// *isRuled is set). A deadline already past fires at once, without a
// timer.
func waitUntil(ctx workflow.Context, deadline time.Time, ruled workflow.ReceiveChannel, isRuled *bool) bool {
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
	sel.Select(ctx)
	return fired
}
