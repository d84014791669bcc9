package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// The backlog of a pair is bounded: past it, admission waits and fails
// with Unavailable at the caller's deadline; released room admits again.
func TestBatcherAdmissionIsBounded(t *testing.T) {
	b := &Batcher{Opts: BatcherOptions{MaxBatch: 2, MaxBacklog: 2}}
	r1, err := b.Admit(context.Background(), "beta")
	require.NoError(t, err)
	_, err = b.Admit(context.Background(), "beta")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = b.Admit(ctx, "beta")
	require.True(t, apperr.Is(err, apperr.Unavailable), "%v", err)
	// Another pair has its own room.
	_, err = b.Admit(context.Background(), "gamma")
	require.NoError(t, err)
	r1()
	r1() // releasing twice frees one slot only
	_, err = b.Admit(context.Background(), "beta")
	require.NoError(t, err)
	require.False(t, b.Carrying(uuid.New()))
}

// fakeTemporal starts batch workflows whose results wait for release.
type fakeTemporal struct {
	client.Client
	started chan []uuid.UUID
	release chan struct{}
}

func (f *fakeTemporal) ExecuteWorkflow(_ context.Context, _ client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	f.started <- args[0].(workflows.BridgeBatchInput).TransferIDs
	return fakeRun{release: f.release}, nil
}

type fakeRun struct {
	client.WorkflowRun
	release chan struct{}
}

func (r fakeRun) Get(context.Context, any) error { <-r.release; return nil }
func (r fakeRun) GetID() string                  { return "bridge-batch-test" }

// A pair's next batch starts as soon as the running one committed its
// completions, not when that batch's workflow result arrives; the
// operations stay marked as carried until it does.
func TestBatcherNextBatchStartsWhenSettled(t *testing.T) {
	ft := &fakeTemporal{started: make(chan []uuid.UUID, 4), release: make(chan struct{})}
	b := &Batcher{Frame: "alpha", Temporal: ft, Opts: BatcherOptions{MaxBatch: 10, MaxInFlight: 1}}
	id1, id2 := uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{id1, id2} {
		_, err := b.Admit(context.Background(), "beta")
		require.NoError(t, err)
		b.Submit("beta", id)
	}
	require.Equal(t, []uuid.UUID{id1}, <-ft.started)
	select {
	case ids := <-ft.started:
		t.Fatalf("a second batch %v started while the first holds the pair's only turn", ids)
	case <-time.After(100 * time.Millisecond):
	}
	b.Settled([]uuid.UUID{id1})
	select {
	case ids := <-ft.started:
		require.Equal(t, []uuid.UUID{id2}, ids)
	case <-time.After(10 * time.Second):
		t.Fatal("the next batch did not start once the first settled")
	}
	require.True(t, b.Carrying(id1), "carried until its batch workflow ends")
	close(ft.release)
	require.Eventually(t, func() bool { return !b.Carrying(id1) && !b.Carrying(id2) }, 10*time.Second, 10*time.Millisecond)
}
