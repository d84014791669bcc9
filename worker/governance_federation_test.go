package worker_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/worker"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// fedFake is one federation proposal at its origin, in memory: peers that
// answer, one whose window ends late on its clock, and one that is down.
type fedFake struct {
	mu           sync.Mutex
	now          func() time.Time
	closes       time.Time
	collectUntil time.Time
	veto         time.Duration
	state        string
	enactAfter   *time.Time
	peers        []string
	down         map[string]bool // unreachable throughout
	notReady     map[string]int  // answers "window not ended" this many times
	announced    []string
	collected    []string
	tallies      int
	talliedAt    time.Time
	missing      []string
	vetoed       bool // the operator vetoes once it passed
	enactedAt    *time.Time
}

func (f *fedFake) status(id string) activities.FederationStatus {
	return activities.FederationStatus{
		Status:       governance.Status{ProposalID: id, State: f.state, ClosesAt: f.closes, EnactAfter: f.enactAfter, HasChange: true},
		CollectUntil: f.collectUntil, Peers: f.peers, Announced: f.announced, Collected: f.collected,
	}
}

func (f *fedFake) FederationStatus(_ context.Context, id string) (activities.FederationStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status(id), nil
}

func (f *fedFake) AnnouncePeer(_ context.Context, _, peer string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[peer] {
		return apperr.New(apperr.Unavailable, "%s is down", peer)
	}
	if !slices.Contains(f.announced, peer) {
		f.announced = append(f.announced, peer)
	}
	return nil
}

func (f *fedFake) CollectPeer(_ context.Context, _, peer string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[peer] {
		return apperr.New(apperr.Unavailable, "%s is down", peer)
	}
	if f.notReady[peer] > 0 {
		f.notReady[peer]--
		return apperr.New(apperr.FailedPrecondition, "%s: window not ended there", peer)
	}
	if !slices.Contains(f.collected, peer) {
		f.collected = append(f.collected, peer)
	}
	return nil
}

func (f *fedFake) TallyFederationProposal(_ context.Context, id string) (governance.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == governance.StateOpen {
		f.tallies++
		f.talliedAt = f.now()
		for _, p := range f.peers {
			if !slices.Contains(f.collected, p) {
				f.missing = append(f.missing, p)
			}
		}
		f.state = governance.StatePassed
		after := f.now().Add(f.veto)
		f.enactAfter = &after
		if f.vetoed {
			f.state = governance.StateVetoed
		}
	}
	return f.status(id).Status, nil
}

func (f *fedFake) EnactFederationProposal(_ context.Context, id string) (governance.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != governance.StatePassed {
		return governance.Status{}, apperr.New(apperr.FailedPrecondition, "proposal is %s", f.state)
	}
	now := f.now()
	f.state, f.enactedAt = governance.StateEnacted, &now
	return f.status(id).Status, nil
}

func newFedFake(now func() time.Time, t0 time.Time, vetoed bool) *fedFake {
	return &fedFake{
		now: now, closes: t0.Add(time.Hour), collectUntil: t0.Add(time.Hour + 10*time.Minute), veto: 48 * time.Hour,
		state: governance.StateOpen, peers: []string{"alpha-op1", "beta-main", "gamma-main"},
		down: map[string]bool{"gamma-main": true}, notReady: map[string]int{"beta-main": 2}, vetoed: vetoed,
	}
}

// Under the time-skipping clock: the proposal is announced to the peers
// that are up, tallied once, after the collection deadline because one
// peer stays down (recorded as missing) while a late peer is collected in
// a later round; a passed change is enacted exactly at its veto window's
// end, and a vetoed one is never enacted.
func TestGovernanceFederationTallyCollectsUntilTheDeadline(t *testing.T) {
	t.Parallel()
	for _, vetoed := range []bool{false, true} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		env.SetStartTime(t0)
		f := newFedFake(env.Now, t0, vetoed)
		env.RegisterActivity(&activities.GovernanceFederation{Fed: f})
		env.ExecuteWorkflow(workflows.GovernanceFederationTally, workflows.GovernanceTallyInput{ProposalID: "00000000-0000-4000-8000-00000000f000"})
		require.NoError(t, env.GetWorkflowError())
		var st governance.Status
		require.NoError(t, env.GetWorkflowResult(&st))
		slices.Sort(f.announced)
		require.Equal(t, []string{"alpha-op1", "beta-main"}, f.announced)
		slices.Sort(f.collected)
		require.Equal(t, []string{"alpha-op1", "beta-main"}, f.collected, "the late peer is collected in a later round")
		require.Equal(t, []string{"gamma-main"}, f.missing, "the peer down is tallied as missing")
		require.Equal(t, 1, f.tallies)
		require.False(t, f.talliedAt.Before(f.collectUntil), "a peer down keeps the tally waiting until the deadline")
		if vetoed {
			require.Equal(t, governance.StateVetoed, st.State)
			require.Nil(t, f.enactedAt, "a vetoed proposal is never enacted")
		} else {
			require.Equal(t, governance.StateEnacted, st.State)
			require.Equal(t, f.talliedAt.Add(48*time.Hour).UTC(), f.enactedAt.UTC())
		}
	}
}

// TestRecordGovernanceFederationHistories records the federation tally's
// history (only with -update): a late peer, a peer down until the
// deadline, a pass and its enactment.
func TestRecordGovernanceFederationHistories(t *testing.T) {
	if !*update {
		t.Skip("records histories only with -update")
	}
	ctx := context.Background()
	tc := testenv.NewTemporal(t)
	require.NoError(t, worker.EnsureSearchAttributes(ctx, tc.Client, tc.Namespace))
	w := sdkworker.New(tc.Client, tc.TaskQueue, sdkworker.Options{})
	workflows.GovernanceFederationFamily.RegisterWorkflows(w)
	t0 := time.Now()
	f := newFedFake(time.Now, t0, false)
	f.closes, f.collectUntil, f.veto = t0.Add(2*time.Second), t0.Add(9*time.Second), time.Second
	f.notReady["beta-main"] = 1
	w.RegisterActivity(&activities.GovernanceFederation{Fed: f})
	require.NoError(t, w.Start())
	defer w.Stop()
	id := "replay-governance-federation-" + t0.Format("150405")
	run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tc.TaskQueue}, workflows.GovernanceFederationTallyName,
		workflows.GovernanceTallyInput{ProposalID: "00000000-0000-4000-8000-00000000f000"})
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, nil))
	writeHistory(t, tc.Client, id, run.GetRunID(), "govfed-tally-missing-peer")
}
