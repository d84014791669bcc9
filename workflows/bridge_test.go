package workflows

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
)

// Transport behaviours of one call to the fake peer frame.
const (
	netOK          = "ok"          // delivered, answered
	netUndelivered = "undelivered" // never left
	netLost        = "lost"        // delivered and applied, the answer lost
	netDropped     = "dropped"     // reached the peer, which failed before applying; no answer
)

// fakeBridge is this TEG's record and the peer frame's state in one: the
// peer applies an operation at most once, refuses it after its expiry
// and fences an ID it is asked about and never applied.
type fakeBridge struct {
	mu          sync.Mutex
	now         func() time.Time
	rec         activities.BridgeRecord
	peerApplied bool
	peerFenced  bool
	applies     int
	refunds     int
	completes   int
	refundFails int
	rejects     bool // the peer refuses the recipient
	script      []string
}

func (f *fakeBridge) next() string {
	if len(f.script) == 0 {
		return netOK
	}
	s := f.script[0]
	f.script = f.script[1:]
	return s
}

func (f *fakeBridge) BridgeRecord(context.Context, uuid.UUID) (activities.BridgeRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rec, nil
}

func (f *fakeBridge) BridgeComplete(context.Context, uuid.UUID, int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rec.Status == "refunded" {
		return errors.New("refunded")
	}
	f.rec.Status = "completed"
	f.completes++
	return nil
}

func (f *fakeBridge) BridgeRefund(context.Context, uuid.UUID, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refundFails > 0 {
		f.refundFails--
		return errors.New("ledger down")
	}
	if f.rec.Status == "completed" {
		return errors.New("completed")
	}
	f.rec.Status = "refunded"
	f.refunds++
	return nil
}

func (f *fakeBridge) Deliver(context.Context, activities.BridgeRecord) activities.BridgeAnswer {
	f.mu.Lock()
	defer f.mu.Unlock()
	net := f.next()
	if net == netUndelivered {
		return activities.BridgeAnswer{Outcome: activities.BridgeUndelivered}
	}
	if net == netDropped {
		return activities.BridgeAnswer{Outcome: activities.BridgeUnknown}
	}
	var out activities.BridgeAnswer
	switch {
	case f.peerApplied:
		out.Outcome = activities.BridgeApplied
	case f.peerFenced || f.now().After(f.rec.ExpiresAt) || f.rejects:
		f.peerFenced = true
		out.Outcome = activities.BridgeRefused
	default:
		f.peerApplied = true
		f.applies++
		out.Outcome = activities.BridgeApplied
	}
	if net == netLost {
		return activities.BridgeAnswer{Outcome: activities.BridgeUnknown}
	}
	return out
}

func (f *fakeBridge) Ask(context.Context, activities.BridgeRecord) activities.BridgeAnswer {
	f.mu.Lock()
	defer f.mu.Unlock()
	net := f.next()
	if net == netUndelivered {
		return activities.BridgeAnswer{Outcome: activities.BridgeUndelivered}
	}
	if net == netDropped {
		return activities.BridgeAnswer{Outcome: activities.BridgeUnknown}
	}
	if !f.peerApplied {
		f.peerFenced = true
	}
	out := activities.BridgeAnswer{Outcome: activities.BridgeRefused}
	if f.peerApplied {
		out.Outcome = activities.BridgeApplied
	}
	if net == netLost {
		return activities.BridgeAnswer{Outcome: activities.BridgeUnknown}
	}
	return out
}

func bridgeEnv(t *testing.T, f *fakeBridge) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Bridge{Ledger: f, Peers: f})
	start := env.Now()
	f.now = env.Now
	f.rec = activities.BridgeRecord{ID: uuid.New(), Kind: "send", PeerFrame: "beta", Recipient: "did:theprotocol:x",
		AmountUnits: 100, Status: "pending", ExpiresAt: start.Add(30 * time.Second)}
	return env
}

func runBridge(t *testing.T, env *testsuite.TestWorkflowEnvironment, f *fakeBridge) (BridgeResult, string) {
	env.ExecuteWorkflow(BridgeTransfer, BridgeInput{TransferID: f.rec.ID, CompensationAttempts: 1})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res BridgeResult
	require.NoError(t, env.GetWorkflowResult(&res))
	v, err := env.QueryWorkflow(QueryBridge)
	require.NoError(t, err)
	var st BridgeStatus
	require.NoError(t, v.Get(&st))
	return res, st.SagaState
}

func TestBridgeTransferOutcomes(t *testing.T) {
	t.Run("minted at once", func(t *testing.T) {
		f := &fakeBridge{}
		res, state := runBridge(t, bridgeEnv(t, f), f)
		require.True(t, res.Completed)
		require.Equal(t, SagaCompleted, state)
		require.Equal(t, 1, f.applies)
		require.Zero(t, f.refunds)
	})
	t.Run("refused: unlocked", func(t *testing.T) {
		f := &fakeBridge{rejects: true}
		res, state := runBridge(t, bridgeEnv(t, f), f)
		require.True(t, res.Refunded)
		require.Equal(t, SagaRefunded, state)
		require.Zero(t, f.applies)
		require.Equal(t, 1, f.refunds)
	})
	t.Run("answer lost: asked again, never unlocked", func(t *testing.T) {
		f := &fakeBridge{script: []string{netLost}}
		res, _ := runBridge(t, bridgeEnv(t, f), f)
		require.True(t, res.Completed)
		require.Equal(t, 1, f.applies)
		require.Zero(t, f.refunds)
	})
	t.Run("unreachable until expiry, never delivered: unlocked without an answer", func(t *testing.T) {
		script := make([]string, 200)
		for i := range script {
			script[i] = netUndelivered
		}
		f := &fakeBridge{script: script}
		res, _ := runBridge(t, bridgeEnv(t, f), f)
		require.True(t, res.Refunded)
		require.Zero(t, f.applies)
	})
	t.Run("a delivery may have applied: waits for the answer, then completes", func(t *testing.T) {
		// The first delivery applies and its answer is lost, then the peer
		// is unreachable well past the expiry: nothing is unlocked while
		// the outcome is unknown.
		script := []string{netLost}
		for range 40 {
			script = append(script, netUndelivered)
		}
		f := &fakeBridge{script: script}
		env := bridgeEnv(t, f)
		sawUnknown := false
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(QueryBridge)
			require.NoError(t, err)
			var st BridgeStatus
			require.NoError(t, v.Get(&st))
			sawUnknown = st.SagaState == SagaOutcomeUnknown
			require.Zero(t, f.refunds)
		}, 3*time.Minute)
		res, _ := runBridge(t, env, f)
		require.True(t, sawUnknown)
		require.True(t, res.Completed)
		require.Zero(t, f.refunds)
	})
	t.Run("the unlock keeps failing: parked until replayed", func(t *testing.T) {
		f := &fakeBridge{rejects: true, refundFails: 1}
		env := bridgeEnv(t, f)
		parked := false
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(QueryBridge)
			require.NoError(t, err)
			var st BridgeStatus
			require.NoError(t, v.Get(&st))
			parked = st.SagaState == SagaCompensationFailed
			require.Zero(t, f.refunds)
			env.SignalWorkflow(SignalSagaReplay, nil)
		}, time.Minute)
		res, _ := runBridge(t, env, f)
		require.True(t, parked)
		require.True(t, res.Refunded)
		require.Equal(t, 1, f.refunds)
	})
}

// Whatever the network does, an operation ends applied on the peer and
// completed here, or not applied and refunded here: never both, never
// twice.
func TestBridgeTransferNeverBothProperty(t *testing.T) {
	behaviours := []string{netOK, netUndelivered, netLost, netDropped}
	rng := rand.New(rand.NewSource(7))
	for i := range 200 {
		// Each case draws from its own subset of behaviours, so long
		// runs of failures (past the expiry) are common.
		var allowed []string
		for _, b := range behaviours {
			if rng.Intn(2) == 0 {
				allowed = append(allowed, b)
			}
		}
		if len(allowed) == 0 {
			allowed = behaviours[1:]
		}
		script := make([]string, rng.Intn(40))
		for j := range script {
			script[j] = allowed[rng.Intn(len(allowed))]
		}
		f := &fakeBridge{script: script, rejects: rng.Intn(5) == 0}
		res, _ := runBridge(t, bridgeEnv(t, f), f)
		require.LessOrEqual(t, f.applies, 1, "case %d %v", i, script)
		if f.peerApplied {
			require.True(t, res.Completed, "case %d %v", i, script)
			require.Zero(t, f.refunds, "case %d %v", i, script)
			require.Equal(t, 1, f.completes, "case %d %v", i, script)
		} else {
			require.True(t, res.Refunded, "case %d %v", i, script)
			require.Equal(t, 1, f.refunds, "case %d %v", i, script)
			require.Zero(t, f.completes, "case %d %v", i, script)
		}
	}
}

func (f *fakeBridge) BridgeRecords(ctx context.Context, ids []uuid.UUID) ([]activities.BridgeRecord, error) {
	r, _ := f.BridgeRecord(ctx, ids[0])
	return []activities.BridgeRecord{r}, nil
}

func (f *fakeBridge) BridgeCompleteMany(ctx context.Context, fees map[uuid.UUID]int64) error {
	for id, fee := range fees {
		if err := f.BridgeComplete(ctx, id, fee); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeBridge) DeliverBatch(ctx context.Context, _ string, rs []activities.BridgeRecord) []activities.BridgeAnswer {
	return []activities.BridgeAnswer{f.Deliver(ctx, rs[0])}
}

// A batch whose delivery may have reached the peer hands the operation to
// its own saga, which then never refunds without the peer's answer.
func TestBridgeBatchHandsOverWhatItCouldNotSettle(t *testing.T) {
	for _, c := range []struct {
		name      string
		script    []string
		completed bool
	}{
		{"applied in the batch", []string{netOK}, true},
		{"applied, answer lost, then unreachable", append([]string{netLost}, repeat(netUndelivered, 60)...), true},
		{"never delivered", repeat(netUndelivered, 60), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeBridge{script: c.script}
			env := bridgeEnv(t, f)
			env.RegisterActivity(&activities.BridgeBatch{Ledger: f, Peers: f})
			env.RegisterWorkflowWithOptions(BridgeTransfer, workflow.RegisterOptions{Name: BridgeTransferWorkflowName})
			env.ExecuteWorkflow(BridgeBatch, BridgeBatchInput{SourceFrame: "alpha", TargetFrame: "beta", TransferIDs: []uuid.UUID{f.rec.ID}})
			require.True(t, env.IsWorkflowCompleted())
			require.NoError(t, env.GetWorkflowError())
			require.LessOrEqual(t, f.applies, 1)
			if c.completed {
				require.Equal(t, "completed", f.rec.Status)
				require.Zero(t, f.refunds)
			} else {
				require.Equal(t, "refunded", f.rec.Status)
				require.Zero(t, f.applies)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
