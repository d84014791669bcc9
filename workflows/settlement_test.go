package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// fakeTarget is a scripted participant plus an in-memory coordinator
// ledger that holds the source's records and records every decision.
type fakeTarget struct {
	mu          sync.Mutex
	recs        map[uuid.UUID]activities.XferRecord // the source's records
	reject      map[uuid.UUID]bool
	tamper      map[uuid.UUID]func(*xferstate.Terms) // the target reports other terms
	silent      bool                                 // the target reports no terms
	prepareErr  error
	commitErr   error // returned while set
	abortErr    error
	decisions   []activities.XferDecision
	prepared    []activities.XferRecord // what the target was asked to prepare
	committed   []activities.XferRecord // what the target was asked to credit
	abortedIDs  []uuid.UUID
	commits     int
	aborts      int
	finishedFee map[uuid.UUID]int64
	// released: transfers whose sender's hold was posted or voided;
	// voided counts the holds released by VoidAborted.
	released map[uuid.UUID]bool
	voided   []uuid.UUID
	status   map[uuid.UUID]xferstate.Status
}

// fakeFor is a fake whose source ledger recorded in's transfers, pending,
// with the terms in carries.
func fakeFor(in SettlementInput) *fakeTarget {
	f := &fakeTarget{recs: map[uuid.UUID]activities.XferRecord{}, released: map[uuid.UUID]bool{}, status: map[uuid.UUID]xferstate.Status{}}
	for _, it := range in.Transfers {
		f.recs[it.ID] = activities.XferRecord{ID: it.ID, Target: in.Target, Status: xferstate.Pending,
			Terms: xferstate.Terms{From: it.From, To: it.To, AmountUnits: it.AmountUnits, Currency: "AVT"}}
	}
	return f
}

// holdActive reports whether the sender's hold of id still reserves the
// funds.
func (f *fakeTarget) holdActive(id uuid.UUID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.released[id]
}

func (f *fakeTarget) Records(_ context.Context, ids []uuid.UUID) (map[uuid.UUID]activities.XferRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[uuid.UUID]activities.XferRecord{}
	for _, id := range ids {
		if r, ok := f.recs[id]; ok {
			if st, ok := f.status[id]; ok {
				r.Status = st
			}
			out[id] = r
		}
	}
	return out, nil
}

func (f *fakeTarget) Prepare(_ context.Context, _ string, xs []activities.XferRecord) ([]activities.XferVote, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prepareErr != nil {
		return nil, f.prepareErr
	}
	f.prepared = append(f.prepared, xs...)
	out := make([]activities.XferVote, len(xs))
	for i, x := range xs {
		terms := x.Terms
		if t := f.tamper[x.ID]; t != nil {
			t(&terms)
		}
		out[i] = activities.XferVote{ID: x.ID, Status: xferstate.Prepared, FeeUnits: 50, Terms: &terms}
		if f.silent {
			out[i].Terms = nil
		}
		if f.reject[x.ID] {
			out[i] = activities.XferVote{ID: x.ID, Status: xferstate.Rejected, Reason: "unknown receiver"}
		}
	}
	return out, nil
}

func (f *fakeTarget) Commit(_ context.Context, _ string, xs []activities.XferRecord) ([]activities.XferVote, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits++
	if f.commitErr != nil {
		return nil, f.commitErr
	}
	f.committed = append(f.committed, xs...)
	out := make([]activities.XferVote, len(xs))
	for i, x := range xs {
		out[i] = activities.XferVote{ID: x.ID, Status: xferstate.Committed, FeeUnits: 50}
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
	f.abortedIDs = append(f.abortedIDs, ids...)
	out := make([]activities.XferVote, len(ids))
	for i, id := range ids {
		out[i] = activities.XferVote{ID: id, Status: xferstate.Aborted}
	}
	return out, nil
}

// Decide decides pending transfers as asked and keeps the decision of
// the others, like the ledger.
func (f *fakeTarget) Decide(_ context.Context, ds []activities.XferDecision) ([]activities.XferOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decisions = append(f.decisions, ds...)
	out := make([]activities.XferOutcome, len(ds))
	for i, d := range ds {
		if st, decided := f.status[d.ID]; !decided || st == xferstate.Pending {
			switch {
			case d.Commit:
				f.status[d.ID], f.released[d.ID] = xferstate.Committing, true
			case d.KeepHoldOnAbort:
				f.status[d.ID] = xferstate.Aborting
			default:
				f.status[d.ID], f.released[d.ID] = xferstate.Aborted, true
			}
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
	f := fakeFor(in)
	f.reject = map[uuid.UUID]bool{in.Transfers[1].ID: true}
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
	f := fakeFor(in)
	f.commitErr = apperr.New(apperr.Unavailable, "target down")
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
	f := fakeFor(in)
	f.prepareErr = apperr.New(apperr.Unavailable, "target down")
	f.abortErr = errors.New("still down")
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
	f := fakeFor(in)
	f.reject = map[uuid.UUID]bool{in.Transfers[0].ID: true}
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
	env := settlementEnv(t, fakeFor(SettlementInput{}))
	env.ExecuteWorkflow(CrossRegistrySettlement, SettlementInput{Source: "a", Target: "b"})
	require.Error(t, env.GetWorkflowError())
}

// forged is in with every transfer's amount inflated and its receiver
// replaced: what someone who may start workflows in the namespace could
// start the settlement with.
func forged(in SettlementInput) SettlementInput {
	out := in
	out.Transfers = nil
	for _, it := range in.Transfers {
		it.AmountUnits *= 1_000
		it.To = "did:theprotocol:mallory"
		out.Transfers = append(out.Transfers, it)
	}
	return out
}

// A settlement started with another receiver and an inflated amount
// prepares and commits the terms the source recorded: the input's copies
// are never sent.
func TestSettlementSendsTheRecordedTermsNotTheInputs(t *testing.T) {
	in := batchOf(2)
	f := fakeFor(in)
	env := settlementEnv(t, f)
	env.ExecuteWorkflow(CrossRegistrySettlement, forged(in))
	require.NoError(t, env.GetWorkflowError())
	var res SettlementResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, SettlementResult{Committed: 2}, res)
	for _, sent := range [][]activities.XferRecord{f.prepared, f.committed} {
		require.Len(t, sent, 2)
		for _, x := range sent {
			require.Equal(t, f.recs[x.ID].Terms, x.Terms)
			require.Equal(t, int64(10_000), x.Terms.AmountUnits)
			require.Equal(t, "did:theprotocol:b", x.Terms.To)
		}
	}
}

// The decision refuses a target that reports other terms than the source
// recorded (here: the amount and the receiver of a forged prepare), and a
// "prepared" that reports none: those transfers abort with the reason,
// the mismatch is handed to the ledger, nothing is committed for them.
func TestSettlementAbortsWhenTheTargetPreparedOtherTerms(t *testing.T) {
	in := batchOf(3)
	f := fakeFor(in)
	f.tamper = map[uuid.UUID]func(*xferstate.Terms){
		in.Transfers[0].ID: func(t *xferstate.Terms) { t.AmountUnits *= 1_000 },
		in.Transfers[1].ID: func(t *xferstate.Terms) { t.To = "did:theprotocol:mallory" },
	}
	env := settlementEnv(t, f)
	env.ExecuteWorkflow(CrossRegistrySettlement, in)
	require.NoError(t, env.GetWorkflowError())
	var res SettlementResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, SettlementResult{Committed: 1, Aborted: 2}, res)
	require.Len(t, f.decisions, 3)
	amount, receiver, good := f.decisions[0], f.decisions[1], f.decisions[2]
	require.False(t, amount.Commit)
	require.True(t, strings.HasPrefix(amount.Reason, xferstate.ReasonTermsMismatch), amount.Reason)
	require.Contains(t, amount.Mismatch, "amount 10000000 (recorded 10000)")
	require.False(t, receiver.Commit)
	require.Contains(t, receiver.Mismatch, "did:theprotocol:mallory")
	require.True(t, good.Commit)
	require.Empty(t, good.Mismatch)
	require.Equal(t, []uuid.UUID{in.Transfers[2].ID}, ids(f.committed), "only the agreeing transfer is credited")
	require.ElementsMatch(t, []uuid.UUID{in.Transfers[0].ID, in.Transfers[1].ID}, f.abortedIDs)
	require.ElementsMatch(t, []uuid.UUID{in.Transfers[0].ID, in.Transfers[1].ID}, f.voided, "their holds are released")

	v, err := env.QueryWorkflow(QuerySettlement)
	require.NoError(t, err)
	var st SettlementStatus
	require.NoError(t, v.Get(&st))
	require.Contains(t, st.Reasons[in.Transfers[0].ID.String()], xferstate.ReasonTermsMismatch)
}

func TestSettlementAbortsAPrepareThatReportsNoTerms(t *testing.T) {
	in := batchOf(1)
	f := fakeFor(in)
	f.silent = true
	env := settlementEnv(t, f)
	env.ExecuteWorkflow(CrossRegistrySettlement, in)
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, f.decisions, 1)
	require.False(t, f.decisions[0].Commit)
	require.Equal(t, xferstate.ReasonTermsUnreported, f.decisions[0].Reason)
	require.NotEmpty(t, f.decisions[0].Mismatch)
	require.Zero(t, f.commits)
}

// A transfer the source does not know, or addressed to another target
// than the saga's, is refused before anything is sent or decided: the
// workflow fails, the transfer stays as it was for its own saga.
func TestSettlementRefusesTransfersOfAnotherTargetOrUnknown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		errType string
		setup   func(f *fakeTarget, id uuid.UUID)
	}{
		{"another target", activities.ErrTypeXferRefused, func(f *fakeTarget, id uuid.UUID) {
			r := f.recs[id]
			r.Target = "alpha-op2"
			f.recs[id] = r
		}},
		{"unknown", activities.ErrTypeXferNotFound, func(f *fakeTarget, id uuid.UUID) { delete(f.recs, id) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := batchOf(2)
			f := fakeFor(in)
			tc.setup(f, in.Transfers[1].ID)
			env := settlementEnv(t, f)
			env.ExecuteWorkflow(CrossRegistrySettlement, in)
			err := env.GetWorkflowError()
			var ae *temporal.ApplicationError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tc.errType, ae.Type())
			require.Empty(t, f.prepared, "nothing prepared")
			require.Empty(t, f.status, "nothing decided")
			require.Zero(t, f.aborts)
			require.Zero(t, f.commits)
			require.True(t, f.holdActive(in.Transfers[0].ID))
		})
	}
}

// A recovered saga of a transfer already decided commit does not prepare
// it again and commits it with the recorded terms.
func TestSettlementCommitsAnAlreadyDecidedTransferWithoutPreparingIt(t *testing.T) {
	in := batchOf(1)
	f := fakeFor(in)
	f.status[in.Transfers[0].ID] = xferstate.Committing
	env := settlementEnv(t, f)
	env.ExecuteWorkflow(CrossRegistrySettlement, forged(in))
	require.NoError(t, env.GetWorkflowError())
	require.Empty(t, f.prepared)
	require.Equal(t, []activities.XferRecord{{ID: in.Transfers[0].ID, Target: in.Target, Terms: f.recs[in.Transfers[0].ID].Terms, Status: xferstate.Committing}}, f.committed)
	require.Zero(t, f.aborts)
}

func ids(xs []activities.XferRecord) []uuid.UUID {
	out := make([]uuid.UUID, len(xs))
	for i, x := range xs {
		out[i] = x.ID
	}
	return out
}
