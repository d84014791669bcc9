package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/dispute"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// memDisputeLedger keeps disputes' statuses for recording histories; the
// deadline checks are the workflow's timers alone here.
type memDisputeLedger struct {
	mu sync.Mutex
	st map[uuid.UUID]dispute.State
	o  map[uuid.UUID]dispute.Outcome
}

func newMemDisputeLedger() *memDisputeLedger {
	return &memDisputeLedger{st: map[uuid.UUID]dispute.State{}, o: map[uuid.UUID]dispute.Outcome{}}
}

func (m *memDisputeLedger) open(id uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st[id] = dispute.State{DisputeID: id.String(), Status: dispute.AwaitingResponse}
}

func (m *memDisputeLedger) set(id uuid.UUID, s dispute.Status, o dispute.Outcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st[id]
	st.Status = s
	m.st[id], m.o[id] = st, o
}

func (m *memDisputeLedger) CloseDisputeResponse(_ context.Context, id uuid.UUID) (dispute.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st[id]
	if st.Status == dispute.AwaitingResponse {
		st.Status, st.Defaulted = dispute.AwaitingRuling, true
		m.st[id] = st
	}
	return st, nil
}

func (m *memDisputeLedger) LapseDispute(_ context.Context, id uuid.UUID) (dispute.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st[id]
	if st.Status.Open() {
		st.Status = dispute.Lapsed
		m.st[id] = st
	}
	return st, nil
}

func (m *memDisputeLedger) SettleDispute(_ context.Context, id uuid.UUID) (dispute.Settlement, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := dispute.Settlement{DisputeID: id.String(), Status: m.st[id].Status, Outcome: m.o[id]}
	if s.Status != dispute.Ruled {
		return dispute.Settlement{DisputeID: id.String(), Status: s.Status}, nil
	}
	if s.Outcome == dispute.ForComplainant {
		s.CompensationUnits = 1_000_000
	} else {
		s.FeeUnits = 50_000
	}
	return s, nil
}

// recordDisputeHistories records the Dispute workflow's paths: answered
// and ruled; the response deadline passed, then ruled; both deadlines
// passed (lapsed); a ruling signal without a ruling.
func recordDisputeHistories(ctx context.Context, tc testenv.Temporal, l *memDisputeLedger, record func(name, id string, wf string, arg any, during func())) {
	start := func(name string, respondIn, ruleIn time.Duration, during func(id uuid.UUID, wid string)) {
		id := uuid.New()
		l.open(id)
		now := time.Now()
		wid := workflows.DisputeWorkflowID(id.String())
		record(name, wid, workflows.DisputeName, workflows.DisputeInput{DisputeID: id.String(), RespondBy: now.Add(respondIn), RuleBy: now.Add(respondIn + ruleIn)}, func() {
			if during != nil {
				during(id, wid)
			}
		})
	}
	signal := func(wid, name string) {
		if err := tc.Client.SignalWorkflow(ctx, wid, "", name, nil); err != nil {
			panic(err)
		}
	}
	start("dispute-answered-ruled", time.Hour, time.Hour, func(id uuid.UUID, wid string) {
		time.Sleep(300 * time.Millisecond)
		l.set(id, dispute.AwaitingRuling, "")
		signal(wid, workflows.DisputeRespondedSignal)
		time.Sleep(300 * time.Millisecond)
		l.set(id, dispute.Ruled, dispute.ForComplainant)
		signal(wid, workflows.DisputeRuledSignal)
	})
	start("dispute-defaulted-ruled", time.Second, time.Hour, func(id uuid.UUID, wid string) {
		time.Sleep(2 * time.Second)
		l.set(id, dispute.Ruled, dispute.ForRespondent)
		signal(wid, workflows.DisputeRuledSignal)
	})
	start("dispute-lapsed", time.Second, time.Second, nil)
	// A ruling signal with no ruling behind it: the workflow looks and
	// keeps its deadlines.
	start("dispute-signal-without-ruling", 2*time.Second, time.Second, func(_ uuid.UUID, wid string) {
		time.Sleep(300 * time.Millisecond)
		signal(wid, workflows.DisputeRuledSignal)
	})
}

var _ activities.DisputeLedger = (*memDisputeLedger)(nil)

// countingDisputeLedger counts settlements applied (the ledger's guard:
// applied once per dispute).
type countingDisputeLedger struct {
	*memDisputeLedger
	mu      sync.Mutex
	applied map[uuid.UUID]int
}

func (c *countingDisputeLedger) SettleDispute(ctx context.Context, id uuid.UUID) (dispute.Settlement, error) {
	c.mu.Lock()
	c.applied[id]++
	c.mu.Unlock()
	return c.memDisputeLedger.SettleDispute(ctx, id)
}

// A worker killed mid-dispute (while the workflow waits on its response
// timer): the ruling recorded and signalled meanwhile is applied once by
// the worker that takes over, on a real Temporal server.
func TestDisputeSurvivesAKilledWorker(t *testing.T) {
	ctx := context.Background()
	tc := testenv.NewTemporal(t)
	l := &countingDisputeLedger{memDisputeLedger: newMemDisputeLedger(), applied: map[uuid.UUID]int{}}
	newWorker := func() sdkworker.Worker {
		w := sdkworker.New(tc.Client, tc.TaskQueue, sdkworker.Options{})
		workflows.DisputeFamily.RegisterWorkflows(w)
		w.RegisterActivity(&activities.Disputes{Ledger: l})
		require.NoError(t, w.Start())
		return w
	}
	first := newWorker()
	id := uuid.New()
	l.open(id)
	now := time.Now()
	wid := workflows.DisputeWorkflowID(id.String())
	run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: tc.TaskQueue}, workflows.DisputeName,
		workflows.DisputeInput{DisputeID: id.String(), RespondBy: now.Add(time.Hour), RuleBy: now.Add(2 * time.Hour)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tc.Client.TerminateWorkflow(context.Background(), wid, "", "test over") })
	require.Eventually(t, func() bool {
		d, err := tc.Client.DescribeWorkflow(ctx, wid, "")
		return err == nil && d.RawResponse.WorkflowExecutionInfo.HistoryLength >= 5 // started, task, timer
	}, 30*time.Second, 100*time.Millisecond, "the workflow waits on its timer")
	first.Stop() // killed: the workflow lives on in the server's history

	l.set(id, dispute.Ruled, dispute.ForComplainant)
	require.NoError(t, tc.Client.SignalWorkflow(ctx, wid, "", workflows.DisputeRuledSignal, nil))
	second := newWorker()
	defer second.Stop()
	var res workflows.DisputeResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, dispute.Ruled, res.Status)
	require.EqualValues(t, 1_000_000, res.CompensationUnits)
	require.Equal(t, 1, l.applied[id], "settled once")
}
