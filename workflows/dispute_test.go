package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/dispute"
)

// memDisputes is one dispute with the ledger's contract: each step acts
// only when the row says it is due and still to do, under one lock, and
// refuses a deadline step before its deadline (by the test clock). It
// counts what it did, so a test can tell a step done twice from once.
type memDisputes struct {
	mu                 sync.Mutex
	now                func() time.Time
	id                 uuid.UUID
	respondBy, ruleBy  time.Time
	status             dispute.Status
	defaulted          bool
	outcome            dispute.Outcome
	settled            int // compensation or fee applications
	defaults, lapses   int
	settleCalls        int
	crashSettleOnce    bool // the first SettleDispute commits, then the worker "dies"
	crashes            int
	calls              []string
	compensation, fee  int64
	claimUnits, feeDue int64
}

func newMemDisputes(now func() time.Time, respondBy, ruleBy time.Time) *memDisputes {
	return &memDisputes{now: now, id: uuid.New(), respondBy: respondBy, ruleBy: ruleBy, status: dispute.AwaitingResponse,
		claimUnits: 1000, feeDue: 50}
}

func (m *memDisputes) respond() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.status == dispute.AwaitingResponse && m.now().Before(m.respondBy) {
		m.status = dispute.AwaitingRuling
	}
}

// rule records a ruling as the store would (refused after rule_by).
func (m *memDisputes) rule(o dispute.Outcome) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.status.Open() || !m.now().Before(m.ruleBy) {
		return false
	}
	m.status, m.outcome = dispute.Ruled, o
	return true
}

func (m *memDisputes) state() dispute.State {
	return dispute.State{DisputeID: m.id.String(), Status: m.status, Defaulted: m.defaulted}
}

func (m *memDisputes) CloseDisputeResponse(_ context.Context, id uuid.UUID) (dispute.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "close-response")
	if m.status != dispute.AwaitingResponse {
		return m.state(), nil
	}
	if m.now().Before(m.respondBy) {
		return dispute.State{}, apperr.New(apperr.Unavailable, "not due")
	}
	m.status, m.defaulted = dispute.AwaitingRuling, true
	m.defaults++
	return m.state(), nil
}

func (m *memDisputes) LapseDispute(_ context.Context, id uuid.UUID) (dispute.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "lapse")
	if !m.status.Open() {
		return m.state(), nil
	}
	if m.now().Before(m.ruleBy) {
		return dispute.State{}, apperr.New(apperr.Unavailable, "not due")
	}
	m.status = dispute.Lapsed
	m.lapses++
	return m.state(), nil
}

func (m *memDisputes) SettleDispute(_ context.Context, id uuid.UUID) (dispute.Settlement, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "settle")
	m.settleCalls++
	if m.status != dispute.Ruled {
		return dispute.Settlement{DisputeID: id.String(), Status: m.status}, nil
	}
	s := dispute.Settlement{DisputeID: id.String(), Status: m.status, Outcome: m.outcome}
	if m.settled == 0 {
		m.settled++
		if m.outcome == dispute.ForComplainant {
			m.compensation += m.claimUnits
		} else {
			m.fee += m.feeDue
		}
		if m.crashSettleOnce && m.crashes == 0 {
			m.crashes++
			return dispute.Settlement{}, errors.New("worker lost after commit")
		}
	} else {
		s.Replayed = true
	}
	s.CompensationUnits, s.FeeUnits = m.compensation, m.fee
	return s, nil
}

var disputeStart = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

const (
	respondWindow = 7 * 24 * time.Hour
	ruleWindow    = 14 * 24 * time.Hour
)

func disputeEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *memDisputes) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(disputeStart)
	m := newMemDisputes(env.Now, disputeStart.Add(respondWindow), disputeStart.Add(respondWindow+ruleWindow))
	env.RegisterActivity(&activities.Disputes{Ledger: m})
	return env, m
}

func runDispute(t *testing.T, env *testsuite.TestWorkflowEnvironment, m *memDisputes) DisputeResult {
	t.Helper()
	env.ExecuteWorkflow(Dispute, DisputeInput{DisputeID: m.id.String(), RespondBy: m.respondBy, RuleBy: m.ruleBy})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res DisputeResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return res
}

// Answered, then ruled for the complainant after the response window: the
// response deadline finds the answer (no default), the compensation is
// applied once.
func TestDisputeRespondedThenRuled(t *testing.T) {
	env, m := disputeEnv(t)
	env.RegisterDelayedCallback(func() { m.respond(); env.SignalWorkflow(DisputeRespondedSignal, nil) }, 2*24*time.Hour)
	env.RegisterDelayedCallback(func() {
		require.True(t, m.rule(dispute.ForComplainant))
		env.SignalWorkflow(DisputeRuledSignal, nil)
	}, 10*24*time.Hour)
	res := runDispute(t, env, m)
	require.Equal(t, DisputeResult{DisputeID: m.id.String(), Status: dispute.Ruled, Outcome: dispute.ForComplainant, CompensationUnits: 1000}, res)
	require.Equal(t, []string{"close-response", "settle"}, m.calls)
	require.Zero(t, m.defaults)
	require.Equal(t, 1, m.settled)
}

// No answer by respond_by: the respondent is in default at exactly that
// time and the tribunal still rules (for the respondent: the fee).
func TestDisputeResponseDeadlineDefaultsThenRuled(t *testing.T) {
	env, m := disputeEnv(t)
	var defaultedAt time.Time
	env.RegisterDelayedCallback(func() {
		require.True(t, m.defaulted)
		defaultedAt = env.Now()
		require.True(t, m.rule(dispute.ForRespondent))
		env.SignalWorkflow(DisputeRuledSignal, nil)
	}, respondWindow+time.Hour)
	res := runDispute(t, env, m)
	require.False(t, defaultedAt.IsZero())
	require.Equal(t, DisputeResult{DisputeID: m.id.String(), Status: dispute.Ruled, Defaulted: true, Outcome: dispute.ForRespondent, FeeUnits: 50}, res)
	require.Equal(t, []string{"close-response", "settle"}, m.calls)
	require.Equal(t, 1, m.defaults)
}

// No answer and no ruling: default at respond_by, lapse at rule_by,
// nothing settled.
func TestDisputeBothDeadlinesLapse(t *testing.T) {
	env, m := disputeEnv(t)
	res := runDispute(t, env, m)
	require.Equal(t, DisputeResult{DisputeID: m.id.String(), Status: dispute.Lapsed, Defaulted: true}, res)
	require.Equal(t, []string{"close-response", "lapse"}, m.calls)
	require.Zero(t, m.settled)
	require.Equal(t, disputeStart.Add(respondWindow+ruleWindow), env.Now().UTC(), "the lapse happens at rule_by")
}

// Answered but never ruled: no default, the dispute lapses at rule_by.
func TestDisputeAnsweredButNeverRuledLapses(t *testing.T) {
	env, m := disputeEnv(t)
	env.RegisterDelayedCallback(func() { m.respond(); env.SignalWorkflow(DisputeRespondedSignal, nil) }, time.Hour)
	res := runDispute(t, env, m)
	require.Equal(t, DisputeResult{DisputeID: m.id.String(), Status: dispute.Lapsed}, res)
	require.Equal(t, []string{"close-response", "lapse"}, m.calls)
	require.Zero(t, m.defaults)
}

// A ruling signal with no ruling behind it (sent by hand, or forged) moves
// nothing: the workflow looks, finds the dispute unruled and keeps its
// deadlines (the respondent still defaults, the dispute still lapses).
func TestDisputeRulingSignalWithoutRulingWaitsOn(t *testing.T) {
	env, m := disputeEnv(t)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(DisputeRuledSignal, nil) }, time.Hour)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(DisputeRuledSignal, nil) }, respondWindow+time.Hour)
	res := runDispute(t, env, m)
	require.Equal(t, DisputeResult{DisputeID: m.id.String(), Status: dispute.Lapsed, Defaulted: true}, res)
	require.Equal(t, []string{"settle", "close-response", "settle", "lapse"}, m.calls)
	require.Zero(t, m.settled)
	require.Equal(t, disputeStart.Add(respondWindow+ruleWindow), env.Now().UTC(), "the deadlines held")
}

// A ruling during the response window settles at once: no deadline step.
func TestDisputeRuledDuringResponseWindow(t *testing.T) {
	env, m := disputeEnv(t)
	env.RegisterDelayedCallback(func() {
		require.True(t, m.rule(dispute.ForComplainant))
		env.SignalWorkflow(DisputeRuledSignal, nil)
	}, time.Hour)
	res := runDispute(t, env, m)
	require.Equal(t, dispute.Ruled, res.Status)
	require.Equal(t, []string{"settle"}, m.calls)
}

// A ruling whose signal never arrived (the signal failed after the ruling
// committed) is found by the lapse step, which then settles it.
func TestDisputeRulingWithoutSignalIsFoundAtTheDeadline(t *testing.T) {
	env, m := disputeEnv(t)
	env.RegisterDelayedCallback(func() { require.True(t, m.rule(dispute.ForComplainant)) }, respondWindow+time.Hour)
	res := runDispute(t, env, m)
	require.Equal(t, dispute.Ruled, res.Status)
	require.Equal(t, []string{"close-response", "lapse", "settle"}, m.calls)
	require.Equal(t, 1, m.settled)
}

// The worker dies after the settlement committed: the retried activity
// finds it applied, and the compensation is paid once.
func TestDisputeSettlementAppliedOnceAcrossACrash(t *testing.T) {
	env, m := disputeEnv(t)
	m.crashSettleOnce = true
	env.RegisterDelayedCallback(func() {
		require.True(t, m.rule(dispute.ForComplainant))
		env.SignalWorkflow(DisputeRuledSignal, nil)
	}, time.Hour)
	res := runDispute(t, env, m)
	require.Equal(t, 1, m.crashes)
	require.Equal(t, 2, m.settleCalls, "retried")
	require.Equal(t, 1, m.settled, "applied once")
	require.EqualValues(t, 1000, res.CompensationUnits)
}

// Started after both deadlines (a late start): the steps run at once.
func TestDisputeStartedLate(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	late := disputeStart.Add(60 * 24 * time.Hour)
	env.SetStartTime(late)
	m := newMemDisputes(env.Now, disputeStart.Add(respondWindow), disputeStart.Add(respondWindow+ruleWindow))
	env.RegisterActivity(&activities.Disputes{Ledger: m})
	res := runDispute(t, env, m)
	require.Equal(t, dispute.Lapsed, res.Status)
	require.Equal(t, late, env.Now().UTC(), "no timer waited")
}

// Malformed input fails at once, non-retryable.
func TestDisputeRefusesBadInput(t *testing.T) {
	for _, in := range []DisputeInput{
		{DisputeID: "not-a-uuid", RespondBy: disputeStart, RuleBy: disputeStart},
		{DisputeID: uuid.NewString()},
		{DisputeID: uuid.NewString(), RespondBy: disputeStart, RuleBy: disputeStart.Add(-time.Second)},
	} {
		env, _ := disputeEnv(t)
		env.ExecuteWorkflow(Dispute, in)
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, env.GetWorkflowError(), &appErr)
		require.Equal(t, activities.ErrTypeDisputeInvalid, appErr.Type())
		require.True(t, appErr.NonRetryable())
	}
}
