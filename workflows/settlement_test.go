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
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
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
	// released: transfers whose sender's hold was posted or voided;
	// voided counts the holds released by VoidAborted.
	released map[uuid.UUID]bool
	voided   []uuid.UUID
	status   map[uuid.UUID]xferstate.Status
}

// holdActive reports whether the sender's hold of id still reserves the
// funds.
func (f *fakeTarget) holdActive(id uuid.UUID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.released[id]
}

func (f *fakeTarget) Prepare(_ context.Context, _ string, items []activities.XferItem) ([]activities.XferVote, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prepareErr != nil {
		return nil, f.prepareErr
	}
	out := make([]activities.XferVote, len(items))
	for i, it := range items {
		out[i] = activities.XferVote{ID: it.ID, Status: xferstate.Prepared, FeeUnits: 50}
		if f.reject[it.ID] {
			out[i] = activities.XferVote{ID: it.ID, Status: xferstate.Rejected, Reason: "unknown receiver"}
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
		out[i] = activities.XferVote{ID: id, Status: xferstate.Committed, FeeUnits: 50}
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
		out[i] = activities.XferVote{ID: id, Status: xferstate.Aborted}
	}
	return out, nil
}

func (f *fakeTarget) Decide(_ context.Context, ds []activities.XferDecision) ([]activities.XferOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decisions = append(f.decisions, ds...)
	if f.released == nil {
		f.released, f.status = map[uuid.UUID]bool{}, map[uuid.UUID]xferstate.Status{}
	}
	out := make([]activities.XferOutcome, len(ds))
	for i, d := range ds {
		switch {
		case d.Commit:
			f.status[d.ID], f.released[d.ID] = xferstate.Committing, true
		case d.KeepHoldOnAbort:
			f.status[d.ID] = xferstate.Aborting
		default:
			f.status[d.ID], f.released[d.ID] = xferstate.Aborted, true
		}
		out[i] = activities.XferOutcome{ID: d.ID, Status: f.status[d.ID], Reason: d.Reason}
	}
	return out, nil
}

func (f *fakeTarget) VoidAborted(_ context.Context, ids []uuid.UUID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if f.status[id] == xferstate.Aborting {
			f.status[id], f.released[id] = xferstate.Aborted, true
			f.voided = append(f.voided, id)
		}
	}
	return nil
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
	require.Equal(t, []uuid.UUID{in.Transfers[1].ID}, f.voided, "its hold is voided after the target's acknowledgement")
	require.Len(t, f.finishedFee, 2)

	v, err := env.QueryWorkflow(QuerySettlement)
	require.NoError(t, err)
	var st SettlementStatus
	require.NoError(t, v.Get(&st))
	require.Equal(t, SagaCommitted, st.SagaState)
	require.Equal(t, xferstate.Committed, st.Transfers[in.Transfers[0].ID.String()])
	require.Equal(t, xferstate.Aborted, st.Transfers[in.Transfers[1].ID.String()])
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

// TestSettlementParksAFailingCompensationKeepingTheHoldsUntilReplayed:
// the abort decision keeps the senders' holds while the target does not
// acknowledge the abort; the replay's acknowledged abort voids them.
func TestSettlementParksAFailingCompensationKeepingTheHoldsUntilReplayed(t *testing.T) {
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
		// While parked the senders' holds still reserve the funds.
		for _, x := range in.Transfers {
			require.True(t, f.holdActive(x.ID), "hold of %s active while parked", x.ID)
			require.Equal(t, xferstate.Aborting, st.Transfers[x.ID.String()])
		}
		f.mu.Lock()
		require.Empty(t, f.voided)
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
	// After the replay's acknowledged abort the holds are voided.
	require.ElementsMatch(t, []uuid.UUID{in.Transfers[0].ID, in.Transfers[1].ID}, f.voided)
	for _, x := range in.Transfers {
		require.False(t, f.holdActive(x.ID))
	}
	v, err := env.QueryWorkflow(QuerySettlement)
	require.NoError(t, err)
	var st SettlementStatus
	require.NoError(t, v.Get(&st))
	require.Equal(t, SagaAborted, st.SagaState)
	for _, x := range in.Transfers {
		require.Equal(t, xferstate.Aborted, st.Transfers[x.ID.String()])
	}
}

// A saga started before the change (DefaultVersion) keeps voiding at the
// decision and never calls SettlementVoidAborted.
func TestSettlementStartedBeforeVoidAfterAckVoidsAtTheDecision(t *testing.T) {
	in := batchOf(1)
	f := &fakeTarget{reject: map[uuid.UUID]bool{in.Transfers[0].ID: true}}
	env := settlementEnv(t, f)
	env.OnGetVersion(settlementVoidAfterAck, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.ExecuteWorkflow(CrossRegistrySettlement, in)
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, f.decisions, 1)
	require.False(t, f.decisions[0].KeepHoldOnAbort)
	require.False(t, f.holdActive(in.Transfers[0].ID))
	require.Empty(t, f.voided)
	require.Equal(t, 1, f.aborts)
}

func TestSettlementRejectsAnEmptyBatch(t *testing.T) {
	env := settlementEnv(t, &fakeTarget{})
	env.ExecuteWorkflow(CrossRegistrySettlement, SettlementInput{Source: "a", Target: "b"})
	require.Error(t, env.GetWorkflowError())
}
