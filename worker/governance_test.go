package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/worker"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// A local proposal with an executable fee change, on the real ledger under
// Temporal's time-skipping clock (the ledger reads the same clock): the
// workflow tallies it exactly at the window's end, enacts it exactly at
// the end of the veto window, a second run (the sweep's) changes nothing,
// and the next transfer pays the new base rate.
func TestGovernanceTallyEnactsTheFeeChangeOnTheLedger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	env.SetStartTime(t0)
	tdb := testenv.NewDB(t, db.RoleTEG)
	store := ledgerstore.New(tdb.Pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true, Now: env.Now})
	_, err := store.Genesis(ctx, 10_000*avt)
	require.NoError(t, err)
	agents := make([]string, 3)
	for i := range agents {
		agents[i] = "did:theprotocol:" + uuid.NewString()
		_, _, err = store.OpenAccount(ctx, agents[i], "agent")
		require.NoError(t, err)
		_, err = store.Grant(ctx, ledgerstore.SupplyRequest{To: agents[i], AmountUnits: 1000 * avt, Reason: "t", Actor: "admin:t", IdempotencyKey: "g" + agents[i]})
		require.NoError(t, err)
	}
	for _, a := range agents[:2] {
		_, err = store.Stake(ctx, ledgerstore.StakeRequest{Owner: a, Tier: "365d", AmountUnits: 100 * avt, IdempotencyKey: "s"})
		require.NoError(t, err)
	}
	id := uuid.New()
	_, err = store.CreateProposal(ctx, ledgerstore.ProposalInput{ID: id, Proposer: agents[0], MinPower: 1000, VetoWindow: 48 * time.Hour,
		Draft: governance.Draft{Title: "cheaper transfers", Window: 24 * time.Hour, QuorumBps: 5000, ThresholdBps: 5000,
			Change: &governance.Change{Kind: governance.ChangeFeeCurve, FeeCurve: &ledger.FeeCurve{BaseBps: 20, MaxBps: 300}}}})
	require.NoError(t, err)

	var late error
	env.RegisterDelayedCallback(func() {
		_, err := store.CastVote(ctx, id, agents[0], governance.Yes)
		require.NoError(t, err)
	}, time.Hour)
	env.RegisterDelayedCallback(func() { _, late = store.CastVote(ctx, id, agents[1], governance.No) }, 24*time.Hour)
	env.RegisterDelayedCallback(func() {
		c, err := store.FeeCurve(ctx)
		require.NoError(t, err)
		require.Equal(t, ledger.DefaultFeeCurve, c, "not enacted one second before the veto window's end")
	}, 72*time.Hour-time.Second)
	env.RegisterActivity(&activities.Governance{Ledger: store})
	env.ExecuteWorkflow(workflows.GovernanceTally, workflows.GovernanceTallyInput{ProposalID: id.String()})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(late), "a vote at the window's end is refused")

	p, err := store.Proposal(ctx, id)
	require.NoError(t, err)
	require.Equal(t, governance.StateEnacted, p.State)
	require.Equal(t, t0.Add(24*time.Hour), p.Tally.At.UTC())
	require.Equal(t, t0.Add(72*time.Hour), p.EnactedAt.UTC())

	// The sweep's run of the same proposal finds everything done.
	env2 := s.NewTestWorkflowEnvironment()
	env2.SetStartTime(t0.Add(80 * time.Hour))
	env2.RegisterActivity(&activities.Governance{Ledger: store})
	env2.ExecuteWorkflow(workflows.GovernanceTally, workflows.GovernanceTallyInput{ProposalID: id.String()})
	require.NoError(t, env2.GetWorkflowError())
	var n int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE idempotency_key IN ($1, $2)`, "tally-"+id.String(), "enact-"+id.String()).Scan(&n))
	require.Equal(t, 2, n, "one ProposalTallied, one ProposalEnacted")

	tr, err := store.Transfer(ctx, ledgerstore.TransferRequest{From: agents[2], To: agents[1], AmountUnits: 100 * avt, IdempotencyKey: "after"})
	require.NoError(t, err)
	require.Equal(t, int64(20), tr.FeeBps)
	require.Equal(t, 100*avt*20/10_000, tr.FeeUnits)
}

// govReplayLedger is one proposal that closes and passes at once, for
// recording histories on the dev server in real time.
type govReplayLedger struct {
	mu     sync.Mutex
	closes time.Time
	state  string
	after  time.Time
}

func (g *govReplayLedger) status(id string) governance.Status {
	st := governance.Status{ProposalID: id, State: g.state, ClosesAt: g.closes, HasChange: true}
	if g.state != governance.StateOpen {
		st.EnactAfter = &g.after
	}
	return st
}
func (g *govReplayLedger) GovernanceStatus(_ context.Context, id string) (governance.Status, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.status(id), nil
}
func (g *govReplayLedger) GovernanceTally(_ context.Context, id string) (governance.Status, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == governance.StateOpen {
		g.state, g.after = governance.StatePassed, time.Now().Add(time.Second)
	}
	return g.status(id), nil
}
func (g *govReplayLedger) GovernanceEnact(_ context.Context, id string) (governance.Status, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.state = governance.StateEnacted
	return g.status(id), nil
}
func (g *govReplayLedger) GovernanceDue(context.Context, int) ([]string, error) {
	return []string{"00000000-0000-4000-8000-00000000d001", "00000000-0000-4000-8000-00000000d002"}, nil
}

type nopStarter struct{}

func (nopStarter) StartTally(context.Context, string) error { return nil }

// TestRecordGovernanceHistories records the governance workflows'
// histories (only with -update): a tally that waits out its window, passes
// and enacts after its veto window, and a sweep that starts two tallies.
func TestRecordGovernanceHistories(t *testing.T) {
	if !*update {
		t.Skip("records histories only with -update")
	}
	ctx := context.Background()
	tc := testenv.NewTemporal(t)
	require.NoError(t, worker.EnsureSearchAttributes(ctx, tc.Client, tc.Namespace))
	w := sdkworker.New(tc.Client, tc.TaskQueue, sdkworker.Options{})
	workflows.GovernanceFamily.RegisterWorkflows(w)
	w.RegisterActivity(&activities.Governance{Ledger: &govReplayLedger{closes: time.Now().Add(2 * time.Second), state: governance.StateOpen}, Starter: nopStarter{}})
	require.NoError(t, w.Start())
	defer w.Stop()
	suffix := time.Now().Format("150405")
	record := func(name, id, wf string, arg any) {
		run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tc.TaskQueue}, wf, arg)
		require.NoError(t, err)
		require.NoError(t, run.Get(ctx, nil))
		writeHistory(t, tc.Client, id, run.GetRunID(), name)
	}
	record("governance-tally-enacted", "replay-governance-tally-"+suffix, workflows.GovernanceTallyName,
		workflows.GovernanceTallyInput{ProposalID: "00000000-0000-4000-8000-00000000d000"})
	record("governance-tally-sweep", "replay-governance-sweep-"+suffix, workflows.GovernanceTallySweepName, workflows.GovernanceTallySweepInput{})
}

// stallAfterTally commits the tally, then holds the activity until its
// worker stops: the tally is in the database, its result never reaches
// Temporal from this worker.
type stallAfterTally struct {
	activities.GovernanceLedger
	committed chan struct{}
	once      sync.Once
}

func (s *stallAfterTally) GovernanceTally(ctx context.Context, id string) (governance.Status, error) {
	st, err := s.GovernanceLedger.GovernanceTally(ctx, id)
	if err != nil {
		return st, err
	}
	s.once.Do(func() { close(s.committed) })
	<-ctx.Done()
	return governance.Status{}, ctx.Err()
}

// A worker stopped in the middle of the tally activity (after its commit)
// on the real Temporal and Postgres: another worker resumes the workflow,
// which finds the recorded tally, and the proposal is tallied and enacted
// exactly once.
func TestGovernanceTallySurvivesWorkerStopMidTally(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := testenv.NewDB(t, db.RoleTEG)
	store := ledgerstore.New(tdb.Pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true})
	_, err := store.Genesis(ctx, 10_000*avt)
	require.NoError(t, err)
	voter := "did:theprotocol:" + uuid.NewString()
	_, _, err = store.OpenAccount(ctx, voter, "agent")
	require.NoError(t, err)
	_, err = store.Grant(ctx, ledgerstore.SupplyRequest{To: voter, AmountUnits: 100 * avt, Reason: "t", Actor: "admin:t", IdempotencyKey: "g"})
	require.NoError(t, err)
	_, err = store.Stake(ctx, ledgerstore.StakeRequest{Owner: voter, Tier: "365d", AmountUnits: 100 * avt, IdempotencyKey: "s"})
	require.NoError(t, err)
	id := uuid.New()
	_, err = store.CreateProposal(ctx, ledgerstore.ProposalInput{ID: id, Proposer: voter, MinPower: 1, VetoWindow: time.Second,
		Draft: governance.Draft{Title: "t", Window: time.Second, QuorumBps: 5000, ThresholdBps: 5000,
			Change: &governance.Change{Kind: governance.ChangeFeeCurve, FeeCurve: &ledger.FeeCurve{BaseBps: 40, MaxBps: 400}}}})
	require.NoError(t, err)
	_, err = store.CastVote(ctx, id, voter, governance.Yes)
	require.NoError(t, err)

	tc := testenv.NewTemporal(t)
	require.NoError(t, worker.EnsureSearchAttributes(ctx, tc.Client, tc.Namespace))
	start := func(l activities.GovernanceLedger) sdkworker.Worker {
		w := sdkworker.New(tc.Client, tc.TaskQueue, sdkworker.Options{})
		workflows.GovernanceFamily.RegisterWorkflows(w)
		w.RegisterActivity(&activities.Governance{Ledger: l, Starter: nopStarter{}})
		require.NoError(t, w.Start())
		return w
	}
	stall := &stallAfterTally{GovernanceLedger: store, committed: make(chan struct{})}
	w1 := start(stall)
	wfID := workflows.GovernanceTallyWorkflowID("alpha-main-"+tc.TaskQueue, id.String())
	run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wfID, TaskQueue: tc.TaskQueue}, workflows.GovernanceTallyName,
		workflows.GovernanceTallyInput{ProposalID: id.String()})
	require.NoError(t, err)
	select {
	case <-stall.committed:
	case <-time.After(60 * time.Second):
		t.Fatal("the tally never committed")
	}
	w1.Stop()
	w2 := start(store)
	t.Cleanup(w2.Stop)
	var st governance.Status
	require.NoError(t, run.Get(ctx, &st))
	require.Equal(t, governance.StateEnacted, st.State)
	for _, key := range []string{"tally-" + id.String(), "enact-" + id.String()} {
		var n int
		require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE idempotency_key = $1`, key).Scan(&n))
		require.Equal(t, 1, n, key)
	}
	c, err := store.FeeCurve(ctx)
	require.NoError(t, err)
	require.Equal(t, ledger.FeeCurve{BaseBps: 40, MaxBps: 400}, c)
}
