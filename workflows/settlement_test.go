package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
)

// fakeTarget is a scripted participant plus an in-memory coordinator
// ledger that records every decision.
type fakeTarget struct {
	mu          sync.Mutex
	reject      map[uuid.UUID]bool
	prepareErr  error
	commitErr   error // returned while set
	abortErr    error
	decisions   []activities.XferDecision
	commits     int
	aborts      int
	finishedFee map[uuid.UUID]int64
}

func (f *fakeTarget) Prepare(_ context.Context, _ string, items []activities.XferItem) ([]activities.XferVote, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prepareErr != nil {
		return nil, f.prepareErr
	}
	out := make([]activities.XferVote, len(items))
	for i, it := range items {
		out[i] = activities.XferVote{ID: it.ID, Status: activities.VotePrepared, FeeUnits: 50}
		if f.reject[it.ID] {
			out[i] = activities.XferVote{ID: it.ID, Status: activities.VoteRejected, Reason: "unknown receiver"}
		}
	}
	return out, nil
}

func (f *fakeTarget) Commit(_ context.Context, _ string, ids []uuid.UUID) ([]activities.XferVote, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits++
	if f.commitErr != nil {
		return nil, f.commitErr
	}
	out := make([]activities.XferVote, len(ids))
	for i, id := range ids {
		out[i] = activities.XferVote{ID: id, Status: activities.VoteCommitted, FeeUnits: 50}
	}
	return out, nil
}

func (f *fakeTarget) Abort(_ context.Context, _ string, ids []uuid.UUID) ([]activities.XferVote, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aborts++
	if f.abortErr != nil {
		return nil, f.abortErr
	}
	out := make([]activities.XferVote, len(ids))
	for i, id := range ids {
		out[i] = activities.XferVote{ID: id, Status: activities.VoteAborted}
	}
	return out, nil
}

func (f *fakeTarget) Decide(_ context.Context, ds []activities.XferDecision) ([]activities.XferOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decisions = append(f.decisions, ds...)
	out := make([]activities.XferOutcome, len(ds))
	for i, d := range ds {
		out[i] = activities.XferOutcome{ID: d.ID, Status: activities.XferAborted, Reason: d.Reason}
		if d.Commit {
			out[i].Status = activities.XferCommitting
		}
	}
	return out, nil
}

func (f *fakeTarget) Finish(_ context.Context, fees map[uuid.UUID]int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finishedFee = fees
	return nil
}

func settlementEnv(t *testing.T, f *fakeTarget) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Settlement{Ledger: f, Peers: f})
	return env
}

func batchOf(n int) SettlementInput {
	in := SettlementInput{Source: "alpha-main", Target: "alpha-op1"}
	for range n {
		in.Transfers = append(in.Transfers, activities.XferItem{ID: uuid.New(), From: "did:theprotocol:a", To: "did:theprotocol:b", AmountUnits: 10_000})
	}
	return in
}

func TestSettlementCommitsTheBatchAndAbortsRejectedTransfersOneByOne(t *testing.T) {
	in := batchOf(3)
	f := &fakeTarget{reject: map[uuid.UUID]bool{in.Transfers[1].ID: true}}
	env := settlementEnv(t, f)
	env.ExecuteWorkflow(CrossRegistrySettlement, in)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res SettlementResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, SettlementResult{Committed: 2, Aborted: 1}, res)
	require.Len(t, f.decisions, 3)
	require.True(t, f.decisions[0].Commit)
	require.False(t, f.decisions[1].Commit)
	require.Contains(t, f.decisions[1].Reason, "unknown receiver")
	require.Equal(t, 1, f.aborts, "the rejected transfer is aborted on the target")
	require.Len(t, f.finishedFee, 2)

	v, err := env.QueryWorkflow(QuerySettlement)
	require.NoError(t, err)
	var st SettlementStatus
	require.NoError(t, v.Get(&st))
	require.Equal(t, SagaCommitted, st.SagaState)
	require.Equal(t, XferStateCommitted, st.Transfers[in.Transfers[0].ID.String()])
	require.Equal(t, XferStateAborted, st.Transfers[in.Transfers[1].ID.String()])
}

func TestSettlementNeverAbortsAfterTheCommitDecision(t *testing.T) {
	in := batchOf(1)
	f := &fakeTarget{commitErr: apperr.New(apperr.Unavailable, "target down")}
	env := settlementEnv(t, f)
	var stalled string
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QuerySettlement)
		require.NoError(t, err)
		var st SettlementStatus
		require.NoError(t, v.Get(&st))
		stalled = st.SagaState
		f.mu.Lock()
		f.commitErr = nil // the target is back
		f.mu.Unlock()
	}, 10*time.Minute)
	env.ExecuteWorkflow(CrossRegistrySettlement, in)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, SagaCommitStalled, stalled)
	var res SettlementResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, SettlementResult{Committed: 1}, res)
	require.Len(t, f.decisions, 1, "decided once, never re-decided as abort")
	require.Zero(t, f.aborts)
	require.Greater(t, f.commits, 5)
}

func TestSettlementParksAFailingCompensationUntilReplayed(t *testing.T) {
	in := batchOf(2)
	f := &fakeTarget{
		prepareErr: apperr.New(apperr.Unavailable, "target down"),
		abortErr:   errors.New("still down"),
	}
	env := settlementEnv(t, f)
	var parked string
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QuerySettlement)
		require.NoError(t, err)
		var st SettlementStatus
		require.NoError(t, v.Get(&st))
		parked = st.SagaState
		f.mu.Lock()
		f.abortErr = nil
		f.mu.Unlock()
		env.SignalWorkflow(SignalSagaReplay, nil)
	}, time.Hour)
	env.ExecuteWorkflow(CrossRegistrySettlement, in)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, SagaCompensationFailed, parked)
	var res SettlementResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, SettlementResult{Aborted: 2}, res)
	for _, d := range f.decisions {
		require.False(t, d.Commit)
	}
	require.Zero(t, f.commits)
}

func TestSettlementRejectsAnEmptyBatch(t *testing.T) {
	env := settlementEnv(t, &fakeTarget{})
	env.ExecuteWorkflow(CrossRegistrySettlement, SettlementInput{Source: "a", Target: "b"})
	require.Error(t, env.GetWorkflowError())
}
