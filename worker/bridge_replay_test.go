package worker_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// TestRecordBridgeHistories records the bridge family's histories
// (-update), with in-memory fakes of the ledger and the peer frame.
func TestRecordBridgeHistories(t *testing.T) {
	if !*update {
		t.Skip("records histories only with -update")
	}
	ctx := context.Background()
	tc := testenv.NewTemporal(t)
	w := sdkworker.New(tc.Client, tc.TaskQueue, sdkworker.Options{})
	workflows.BridgeFamily.RegisterWorkflows(w)
	l := &memBridgeLedger{recs: map[uuid.UUID]*activities.BridgeRecord{}}
	p := &scriptedBridgePeer{}
	w.RegisterActivity(&activities.Bridge{Ledger: l, Peers: p})
	w.RegisterActivity(&activities.BridgeBatch{Ledger: l, Peers: p})
	require.NoError(t, w.Start())
	defer w.Stop()
	require.NoError(t, os.MkdirAll(historyDir, 0o755))

	record := func(name, kind, wf string, deliver []string, ask string, refundFails int, window time.Duration, during func(id string)) {
		t.Run(name, func(t *testing.T) {
			id := uuid.New()
			l.add(id, kind, window, refundFails)
			p.script(deliver, ask)
			wid := workflows.BridgeWorkflowID(id)
			run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: tc.TaskQueue},
				wf, workflows.BridgeInput{TransferID: id, CompensationAttempts: 1})
			require.NoError(t, err)
			if during != nil {
				during(wid)
			}
			require.NoError(t, run.Get(ctx, nil))
			writeHistory(t, tc.Client, wid, run.GetRunID(), name)
		})
	}
	ap, rf, un := activities.BridgeApplied, activities.BridgeRefused, activities.BridgeUnknown
	ud := activities.BridgeUndelivered
	record("bridge-transfer-minted", "send", workflows.BridgeTransferWorkflowName, []string{ap}, "", 0, time.Minute, nil)
	record("bridge-transfer-refused", "send", workflows.BridgeTransferWorkflowName, []string{rf}, "", 0, time.Minute, nil)
	// The reply of a delivery is lost, then the peer is unreachable until
	// expiry: asking it finds the mint.
	record("bridge-transfer-unknown-asked", "send", workflows.BridgeTransferWorkflowName, []string{un, ud}, ap, 0, time.Second, nil)
	// Never delivered: refunded once expired, the unlock parks once and is
	// replayed.
	record("bridge-transfer-parked-replayed", "send", workflows.BridgeTransferWorkflowName, []string{ud}, ud, 1, time.Second, func(id string) {
		time.Sleep(4 * time.Second)
		require.NoError(t, tc.Client.SignalWorkflow(ctx, id, "", workflows.SignalSagaReplay, nil))
	})
	// A batch of three: two minted at once, one whose answer was lost
	// handed to its own saga (which finds it minted).
	t.Run("bridge-batch-minted-and-handed-over", func(t *testing.T) {
		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		for _, id := range ids {
			l.add(id, "send", time.Second, 0)
		}
		p.script([]string{ap, ap, un, ap}, ap)
		wid := workflows.BridgeBatchWorkflowID(ids[0])
		run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: tc.TaskQueue},
			workflows.BridgeBatchWorkflowName, workflows.BridgeBatchInput{SourceFrame: "alpha", TargetFrame: "beta", TransferIDs: ids})
		require.NoError(t, err)
		require.NoError(t, run.Get(ctx, nil))
		writeHistory(t, tc.Client, wid, run.GetRunID(), "bridge-batch-minted-and-handed-over")
	})
	record("bridge-redemption-released", "redeem", workflows.BridgeRedemptionWorkflowName, []string{ap}, "", 0, time.Minute, nil)
	record("bridge-redemption-reminted", "redeem", workflows.BridgeRedemptionWorkflowName, []string{rf}, "", 0, time.Minute, nil)
}

type memBridgeLedger struct {
	mu          sync.Mutex
	recs        map[uuid.UUID]*activities.BridgeRecord
	refundFails map[uuid.UUID]int
}

func (m *memBridgeLedger) add(id uuid.UUID, kind string, window time.Duration, refundFails int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[id] = &activities.BridgeRecord{ID: id, Kind: kind, PeerFrame: "beta", Recipient: "did:theprotocol:replay",
		AmountUnits: 100_000_000, Status: "pending", ExpiresAt: time.Now().Add(window)}
	if m.refundFails == nil {
		m.refundFails = map[uuid.UUID]int{}
	}
	m.refundFails[id] = refundFails
}

func (m *memBridgeLedger) BridgeRecord(_ context.Context, id uuid.UUID) (activities.BridgeRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return *m.recs[id], nil
}

func (m *memBridgeLedger) BridgeComplete(_ context.Context, id uuid.UUID, _ int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[id].Status = "completed"
	return nil
}

func (m *memBridgeLedger) BridgeRefund(_ context.Context, id uuid.UUID, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refundFails[id] > 0 {
		m.refundFails[id]--
		return errors.New("ledger unavailable")
	}
	m.recs[id].Status = "refunded"
	return nil
}

// scriptedBridgePeer answers deliveries from a script (its last answer
// repeats) and questions with one answer.
type scriptedBridgePeer struct {
	mu      sync.Mutex
	deliver []string
	ask     string
}

func (p *scriptedBridgePeer) script(deliver []string, ask string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deliver, p.ask = deliver, ask
}

func (p *scriptedBridgePeer) Deliver(context.Context, activities.BridgeRecord) activities.BridgeAnswer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.deliver[0]
	if len(p.deliver) > 1 {
		p.deliver = p.deliver[1:]
	}
	return activities.BridgeAnswer{Outcome: out, Reason: out, FeeUnits: 500_000}
}

func (p *scriptedBridgePeer) Ask(context.Context, activities.BridgeRecord) activities.BridgeAnswer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return activities.BridgeAnswer{Outcome: p.ask, Reason: p.ask}
}

func (m *memBridgeLedger) BridgeRecords(ctx context.Context, ids []uuid.UUID) ([]activities.BridgeRecord, error) {
	var out []activities.BridgeRecord
	for _, id := range ids {
		r, _ := m.BridgeRecord(ctx, id)
		out = append(out, r)
	}
	return out, nil
}

func (m *memBridgeLedger) BridgeCompleteMany(ctx context.Context, fees map[uuid.UUID]int64) error {
	for id := range fees {
		_ = m.BridgeComplete(ctx, id, 0)
	}
	return nil
}

func (p *scriptedBridgePeer) DeliverBatch(ctx context.Context, _ string, rs []activities.BridgeRecord) []activities.BridgeAnswer {
	out := make([]activities.BridgeAnswer, len(rs))
	for i, r := range rs {
		out[i] = p.Deliver(ctx, r)
	}
	return out
}
