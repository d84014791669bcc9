package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/governance"
)

// memGov is one proposal on an in-memory ledger that behaves like
// ledgerstore's: votes only inside the window, the tally and the
// enactment once each, on the test environment's clock.
type memGov struct {
	mu         sync.Mutex
	now        func() time.Time
	id         string
	closes     time.Time
	veto       time.Duration
	rules      governance.Rules
	snapshot   []governance.SnapshotEntry
	votes      map[string]governance.Choice
	state      string
	enactAfter *time.Time
	hasChange  bool
	tallies    int
	enacts     int
	talliedAt  time.Time
	enactedAt  time.Time
	// crashAfterTally makes the next tally calls fail after committing, as
	// a worker killed between the commit and the activity's completion.
	crashAfterTally int
}

func newMemGov(now func() time.Time, window time.Duration, rules governance.Rules, snap []governance.SnapshotEntry) *memGov {
	return &memGov{now: now, id: "11111111-2222-3333-4444-555555555555", closes: now().Add(window), veto: 2 * time.Hour,
		rules: rules, snapshot: snap, votes: map[string]governance.Choice{}, state: governance.StateOpen, hasChange: true}
}

func (m *memGov) status() governance.Status {
	return governance.Status{ProposalID: m.id, State: m.state, ClosesAt: m.closes, EnactAfter: m.enactAfter, HasChange: m.hasChange}
}

func (m *memGov) vote(voter string, c governance.Choice) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != governance.StateOpen || !m.now().Before(m.closes) {
		return apperr.New(apperr.FailedPrecondition, "voting closed at %s", m.closes)
	}
	m.votes[voter] = c
	return nil
}

func (m *memGov) GovernanceStatus(_ context.Context, id string) (governance.Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id != m.id {
		return governance.Status{}, apperr.New(apperr.NotFound, "no proposal %s", id)
	}
	return m.status(), nil
}

func (m *memGov) GovernanceTally(_ context.Context, id string) (governance.Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id != m.id {
		return governance.Status{}, apperr.New(apperr.NotFound, "no proposal %s", id)
	}
	if m.state == governance.StateOpen {
		if m.now().Before(m.closes) {
			return governance.Status{}, apperr.New(apperr.FailedPrecondition, "open until %s", m.closes)
		}
		r, err := governance.Tally(m.snapshot, m.votes, m.rules)
		if err != nil {
			return governance.Status{}, err
		}
		m.tallies++
		m.talliedAt = m.now()
		m.state = governance.StateRejected
		if r.Passed {
			m.state = governance.StatePassed
			if m.hasChange {
				t := m.now().Add(m.veto)
				m.enactAfter = &t
			}
		}
	}
	if m.crashAfterTally > 0 {
		m.crashAfterTally--
		return governance.Status{}, errors.New("worker killed after the commit")
	}
	return m.status(), nil
}

func (m *memGov) GovernanceEnact(_ context.Context, id string) (governance.Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.state == governance.StateEnacted:
		return m.status(), nil
	case m.state != governance.StatePassed || !m.hasChange:
		return governance.Status{}, apperr.New(apperr.FailedPrecondition, "proposal is %s", m.state)
	case m.now().Before(*m.enactAfter):
		return governance.Status{}, apperr.New(apperr.FailedPrecondition, "in its veto window")
	}
	m.enacts++
	m.enactedAt = m.now()
	m.state = governance.StateEnacted
	return m.status(), nil
}

func (m *memGov) GovernanceDue(context.Context, int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if (m.state == governance.StateOpen && !m.now().Before(m.closes)) ||
		(m.state == governance.StatePassed && m.hasChange && !m.now().Before(*m.enactAfter)) {
		return []string{m.id}, nil
	}
	return nil, nil
}

func (m *memGov) doVeto() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == governance.StatePassed {
		m.state = governance.StateVetoed
	}
}

type recStarter struct {
	mu  sync.Mutex
	ids []string
}

func (r *recStarter) StartTally(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	return nil
}

var govStart = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func govEnv(t *testing.T, window time.Duration, rules governance.Rules, snap []governance.SnapshotEntry) (*testsuite.TestWorkflowEnvironment, *memGov) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(govStart)
	m := newMemGov(func() time.Time { return env.Now().UTC() }, window, rules, snap)
	m.closes = govStart.Add(window)
	env.RegisterActivity(&activities.Governance{Ledger: m, Starter: &recStarter{}})
	return env, m
}

var twoVoters = []governance.SnapshotEntry{{Voter: "a", Power: 60}, {Voter: "b", Power: 40, Delegate: "a"}}

// A vote one microsecond before the window's end counts; one at the end
// is refused; the tally runs at the end and the change is enacted exactly
// when the veto window ends.
func TestGovernanceTallyWindowEdges(t *testing.T) {
	env, m := govEnv(t, time.Hour, governance.Rules{QuorumBps: 5000, ThresholdBps: 5000}, twoVoters)
	var late error
	env.RegisterDelayedCallback(func() { require.NoError(t, m.vote("b", governance.No)) }, time.Minute)
	env.RegisterDelayedCallback(func() { require.NoError(t, m.vote("a", governance.Yes)) }, time.Hour-time.Microsecond)
	env.RegisterDelayedCallback(func() { late = m.vote("a", governance.No) }, time.Hour)
	env.ExecuteWorkflow(GovernanceTally, GovernanceTallyInput{ProposalID: m.id})
	require.NoError(t, env.GetWorkflowError())
	var st governance.Status
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(late), "a vote at the window's end is refused")
	require.Equal(t, governance.StateEnacted, st.State)
	require.Equal(t, 1, m.tallies)
	require.Equal(t, 1, m.enacts)
	require.Equal(t, govStart.Add(time.Hour), m.talliedAt, "tallied at the window's end")
	require.Equal(t, govStart.Add(3*time.Hour), *m.enactAfter)
	require.Equal(t, govStart.Add(3*time.Hour), m.enactedAt, "enacted at the veto window's end")
	require.Equal(t, governance.Yes, m.votes["a"], "the vote at the edge did not change the vote inside")
}

// Quorum and threshold exactly at their edges pass; one unit short fails.
func TestGovernanceTallyQuorumAndThresholdEdges(t *testing.T) {
	snap := []governance.SnapshotEntry{{Voter: "y", Power: 0}, {Voter: "n", Power: 0}, {Voter: "s", Power: 0}}
	for _, c := range []struct {
		name           string
		yes, no, quiet int64
		rules          governance.Rules
		want           string
	}{
		{"quorum exactly", 40, 0, 60, governance.Rules{QuorumBps: 4000, ThresholdBps: 5000}, governance.StateEnacted},
		{"quorum one short", 39, 0, 61, governance.Rules{QuorumBps: 4000, ThresholdBps: 5000}, governance.StateRejected},
		{"threshold exactly", 6670, 3330, 0, governance.Rules{QuorumBps: 100, ThresholdBps: 6670}, governance.StateEnacted},
		{"threshold one short", 6669, 3331, 0, governance.Rules{QuorumBps: 100, ThresholdBps: 6670}, governance.StateRejected},
		{"tie", 50, 50, 0, governance.Rules{QuorumBps: 100, ThresholdBps: 5000}, governance.StateRejected},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := append([]governance.SnapshotEntry(nil), snap...)
			s[0].Power, s[1].Power, s[2].Power = c.yes, c.no, c.quiet
			env, m := govEnv(t, time.Hour, c.rules, s)
			env.RegisterDelayedCallback(func() {
				require.NoError(t, m.vote("y", governance.Yes))
				require.NoError(t, m.vote("n", governance.No))
			}, time.Minute)
			env.ExecuteWorkflow(GovernanceTally, GovernanceTallyInput{ProposalID: m.id})
			require.NoError(t, env.GetWorkflowError())
			var st governance.Status
			require.NoError(t, env.GetWorkflowResult(&st))
			require.Equal(t, c.want, st.State)
			require.Equal(t, 1, m.tallies)
		})
	}
}

// A worker killed after the tally committed (the activity fails twice
// after its commit) retries into the recorded tally: one tally, one
// enactment.
func TestGovernanceTallyWorkerKilledMidTally(t *testing.T) {
	env, m := govEnv(t, time.Hour, governance.Rules{QuorumBps: 5000, ThresholdBps: 5000}, twoVoters)
	m.crashAfterTally = 2
	env.RegisterDelayedCallback(func() { require.NoError(t, m.vote("a", governance.Yes)) }, time.Minute)
	env.ExecuteWorkflow(GovernanceTally, GovernanceTallyInput{ProposalID: m.id})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, 1, m.tallies)
	require.Equal(t, 1, m.enacts)
	require.Equal(t, governance.StateEnacted, m.state)
}

// The sweep and the timer racing: the sweep starts the proposal's tally
// workflow once its window has passed; a second run of the workflow (the
// one the sweep started, next to the timer's) finds the tally and the
// enactment done and changes nothing.
func TestGovernanceSweepRacingTheTimer(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(govStart.Add(2 * time.Hour))
	m := newMemGov(func() time.Time { return env.Now().UTC() }, time.Hour, governance.Rules{QuorumBps: 5000, ThresholdBps: 5000}, twoVoters)
	m.closes = govStart.Add(time.Hour)
	m.votes["a"] = governance.Yes
	st := &recStarter{}
	env.RegisterActivity(&activities.Governance{Ledger: m, Starter: st})
	env.ExecuteWorkflow(GovernanceTallySweep, GovernanceTallySweepInput{})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{m.id}, st.ids)

	for run := 0; run < 2; run++ { // the timer's run and the sweep's
		env := s.NewTestWorkflowEnvironment()
		env.SetStartTime(govStart.Add(2 * time.Hour))
		m.now = func() time.Time { return env.Now().UTC() }
		env.RegisterActivity(&activities.Governance{Ledger: m, Starter: st})
		env.ExecuteWorkflow(GovernanceTally, GovernanceTallyInput{ProposalID: m.id})
		require.NoError(t, env.GetWorkflowError())
		var res governance.Status
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, governance.StateEnacted, res.State)
	}
	require.Equal(t, 1, m.tallies)
	require.Equal(t, 1, m.enacts)
}

// A proposal vetoed in its veto window is never enacted; the workflow
// ends with the vetoed status.
func TestGovernanceVetoedIsNeverEnacted(t *testing.T) {
	env, m := govEnv(t, time.Hour, governance.Rules{QuorumBps: 5000, ThresholdBps: 5000}, twoVoters)
	env.RegisterDelayedCallback(func() { require.NoError(t, m.vote("a", governance.Yes)) }, time.Minute)
	env.RegisterDelayedCallback(m.doVeto, 2*time.Hour)
	env.ExecuteWorkflow(GovernanceTally, GovernanceTallyInput{ProposalID: m.id})
	require.NoError(t, env.GetWorkflowError())
	var st governance.Status
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, governance.StateVetoed, st.State)
	require.Equal(t, 0, m.enacts)
}

// An unknown proposal ends the workflow without retrying.
func TestGovernanceTallyUnknownProposal(t *testing.T) {
	env, _ := govEnv(t, time.Hour, governance.Rules{QuorumBps: 5000, ThresholdBps: 5000}, twoVoters)
	env.ExecuteWorkflow(GovernanceTally, GovernanceTallyInput{ProposalID: "99999999-2222-3333-4444-555555555555"})
	require.Error(t, env.GetWorkflowError())
}
