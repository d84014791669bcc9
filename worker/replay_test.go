package worker_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

var update = flag.Bool("update", false, "record workflow histories into testdata/histories from runs on the dev server")

const historyDir = "testdata/histories"

// TestReplayCommittedHistories replays every family's recorded histories
// against the current workflow code, registered through the family list:
// a change that breaks determinism for running workflows fails here
// ([TMPRL1100]) and must go behind workflow.GetVersion.
func TestReplayCommittedHistories(t *testing.T) {
	for _, f := range workflows.Families {
		t.Run(f.Name, func(t *testing.T) {
			files, err := filepath.Glob(filepath.Join(historyDir, f.Histories))
			require.NoError(t, err)
			require.NotEmpty(t, files, "no history matches %s (record them: go test ./worker -run 'TestRecordHistories/<name>' -update)", f.Histories)
			for _, file := range files {
				t.Run(filepath.Base(file), func(t *testing.T) {
					r := sdkworker.NewWorkflowReplayer()
					f.RegisterWorkflows(r)
					require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, file))
				})
			}
		})
	}
}

// TestHistoriesCoverEveryWorkflow makes an omission fail the build: every
// workflow a family registers has a committed history, and every committed
// history belongs to exactly one family (by its glob) and names a workflow
// that family registers.
func TestHistoriesCoverEveryWorkflow(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(historyDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	covered := map[string]bool{}
	for _, file := range files {
		base := filepath.Base(file)
		var owners []workflows.Family
		for _, f := range workflows.Families {
			if ok, err := filepath.Match(f.Histories, base); err != nil {
				t.Fatalf("family %s: bad history glob %q: %v", f.Name, f.Histories, err)
			} else if ok {
				owners = append(owners, f)
			}
		}
		require.Len(t, owners, 1, "history %s must match exactly one family's glob", base)
		name := historyWorkflow(t, file)
		registered := false
		for _, w := range owners[0].Workflows {
			registered = registered || w.Name == name
		}
		require.True(t, registered, "history %s runs workflow %q, which family %s does not register", base, name, owners[0].Name)
		covered[name] = true
	}
	for _, f := range workflows.Families {
		for _, w := range f.Workflows {
			require.True(t, covered[w.Name], "family %s: workflow %s has no committed history in %s (record one: go test ./worker -run 'TestRecordHistories/<name>' -update)", f.Name, w.Name, historyDir)
		}
	}
}

// historyWorkflow is the workflow type a recorded history started.
func historyWorkflow(t *testing.T, file string) string {
	t.Helper()
	raw, err := os.Open(file)
	require.NoError(t, err)
	defer raw.Close()
	h, err := client.HistoryFromJSON(raw, client.HistoryJSONOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, h.GetEvents(), file)
	started := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
	require.NotNil(t, started, "%s does not begin with WorkflowExecutionStarted", file)
	return started.GetWorkflowType().GetName()
}

type memBondLedger struct {
	mu    sync.Mutex
	moves map[string]string
}

func (m *memBondLedger) ReleaseBond(_ context.Context, did, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.moves[key] = did
	return nil
}
func (m *memBondLedger) ForfeitBond(ctx context.Context, did, key string) error {
	return m.ReleaseBond(ctx, did, key)
}

func (m *memBondLedger) VoidBond(ctx context.Context, did, key string) error {
	return m.ReleaseBond(ctx, did, key)
}

// fixedCriteria: every agent is active, bonded long ago, with the given
// activity; DIDs ending in "-gone" are deregistered.
type fixedCriteria struct{ transfers, trust int64 }

func (f fixedCriteria) AgentState(_ context.Context, did string) (string, error) {
	if strings.HasSuffix(did, "-gone") {
		return activities.AgentDeregistered, nil
	}
	return activities.AgentActive, nil
}
func (f fixedCriteria) TransferCount(context.Context, string) (int64, error) { return f.transfers, nil }
func (f fixedCriteria) TrustScore(context.Context, string) (int64, error)    { return f.trust, nil }
func (f fixedCriteria) LockedAt(context.Context, string) (time.Time, error) {
	return time.Now().Add(-24 * time.Hour), nil
}

// fixedReputation computes every run the same.
type fixedReputation struct{}

func (fixedReputation) RunReputation(_ context.Context, runID string) (activities.ReputationRunResult, error) {
	return activities.ReputationRunResult{RunID: runID, Seq: 1, Agents: 3, Edges: 2, Iterations: 9, Converged: true, Digest: "00"}, nil
}

// TestRecordHistories runs each workflow on the real dev server and writes
// its history; only with -update.
func TestRecordHistories(t *testing.T) {
	if !*update {
		t.Skip("records histories only with -update")
	}
	ctx := context.Background()
	tc := testenv.NewTemporal(t)
	w := sdkworker.New(tc.Client, tc.TaskQueue, sdkworker.Options{})
	for _, f := range workflows.Families {
		f.RegisterWorkflows(w)
	}
	w.RegisterActivity(&activities.Sweeper{Stores: []activities.IdempotencySweeper{}})
	w.RegisterActivity(&activities.HoldSweeper{Expirer: &countdownExpirer{left: 3}})
	w.RegisterActivity(&activities.PrepareSweep{Sweeper: fixedSweeper(2)})
	w.RegisterActivity(&activities.BondMaturation{Ledger: &memBondLedger{moves: map[string]string{}}, Criteria: fixedCriteria{transfers: 20, trust: 9000}})
	peers := &scriptedPeers{}
	source := &memSettlementLedger{}
	w.RegisterActivity(&activities.Settlement{Ledger: source, Peers: peers})
	w.RegisterActivity(&activities.BalanceCheckpoints{Ledger: &memCheckpointLedger{}})
	disputes := newMemDisputeLedger()
	w.RegisterActivity(&activities.Disputes{Ledger: disputes})
	w.RegisterActivity(&activities.ReputationRun{Runner: fixedReputation{}})
	w.RegisterActivity(&activities.FederationSync{Puller: scriptedPulls})
	require.NoError(t, w.Start())
	defer w.Stop()
	require.NoError(t, os.MkdirAll(historyDir, 0o755))

	// Each history is a subtest, so one can be recorded alone
	// (-run 'TestRecordHistories/hold-expiry-sweep') without re-recording
	// the others, which running workflows depend on.
	record := func(name, id string, wf string, arg any, during func()) {
		t.Run(name, func(t *testing.T) {
			var args []any
			if arg != nil {
				args = []any{arg}
			}
			run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tc.TaskQueue}, wf, args...)
			require.NoError(t, err)
			if during != nil {
				during()
			}
			require.NoError(t, run.Get(ctx, nil))
			writeHistory(t, tc.Client, id, run.GetRunID(), name)
		})
	}
	suffix := time.Now().Format("150405")
	record("idempotency-sweep", "replay-sweep-"+suffix, workflows.IdempotencySweepName, workflows.IdempotencySweepInput{Retention: 48 * time.Hour}, nil)
	// A batch of two, then one: the sweep stops at the short batch.
	record("hold-expiry-sweep", "replay-hold-expiry-"+suffix, workflows.HoldExpirySweepName, workflows.HoldExpirySweepInput{BatchSize: 2}, nil)
	record("settlement-prepare-sweep", "replay-prepare-sweep-"+suffix, workflows.PrepareSweepWorkflowName, nil, nil)
	record("balance-checkpoint-written", "replay-balance-checkpoint-"+suffix, workflows.BalanceCheckpointName, nil, nil)
	record("reputation-run", "reputation-run-replay-"+suffix, workflows.ReputationRunName, workflows.ReputationRunInput{}, nil)
	record("bond-matured", "replay-bond-m-"+suffix, workflows.BondWorkflowName,
		workflows.BondInput{AgentDID: "did:theprotocol:replay-m", AmountUnits: 5_000_000_000, MinAge: time.Second, RecheckEvery: time.Second}, nil)
	id := "replay-bond-f-" + suffix
	// bond-forfeited.json was recorded before "bond-forfeit-confirms-
	// deregistration" (the signal alone forfeited); it is kept, not
	// re-recorded. The two below take the registry check.
	record("bond-forfeited", id, workflows.BondWorkflowName,
		workflows.BondInput{AgentDID: "did:theprotocol:replay-f", AmountUnits: 5_000_000_000, MinAge: time.Hour}, func() {
			time.Sleep(500 * time.Millisecond)
			require.NoError(t, tc.Client.SignalWorkflow(ctx, id, "", workflows.SignalBondDeregistered, nil))
		})
	idConfirmed := "replay-bond-sc-" + suffix
	record("bond-signal-confirmed", idConfirmed, workflows.BondWorkflowName,
		workflows.BondInput{AgentDID: "did:theprotocol:replay-sc-gone", AmountUnits: 5_000_000_000, MinAge: time.Hour}, func() {
			time.Sleep(500 * time.Millisecond)
			require.NoError(t, tc.Client.SignalWorkflow(ctx, idConfirmed, "", workflows.SignalBondDeregistered, nil))
		})
	idForged := "replay-bond-su-" + suffix
	record("bond-signal-unconfirmed", idForged, workflows.BondWorkflowName,
		workflows.BondInput{AgentDID: "did:theprotocol:replay-su", AmountUnits: 5_000_000_000, MinAge: 3 * time.Second}, func() {
			time.Sleep(500 * time.Millisecond)
			require.NoError(t, tc.Client.SignalWorkflow(ctx, idForged, "", workflows.SignalBondDeregistered, nil))
		})

	batch := func(n int) workflows.SettlementInput {
		in := workflows.SettlementInput{Source: "alpha-main", Target: "alpha-op1", CompensationAttempts: 1, CommitAttempts: 1}
		for i := range n {
			in.Transfers = append(in.Transfers, activities.XferItem{ID: uuid.New(), From: "did:theprotocol:a", To: fmt.Sprintf("did:theprotocol:b%d", i), AmountUnits: 1_000_000})
		}
		source.accept(in)
		return in
	}
	// settlement-v0-*.json were recorded before the change
	// "abort-voids-hold-after-target-ack" (DefaultVersion: the decision
	// voids the holds); they are kept, not re-recorded, so that path stays
	// replayable for sagas started before it.
	peers.set(false, false)
	in := batch(3)
	record("settlement-committed", workflows.SettlementWorkflowID("alpha-main", "alpha-op1", in.Transfers[0].ID), workflows.SettlementWorkflowName, in, nil)
	peers.set(true, false) // every transfer rejected by the target
	in = batch(2)
	record("settlement-aborted", workflows.SettlementWorkflowID("alpha-main", "alpha-op1", in.Transfers[0].ID), workflows.SettlementWorkflowName, in, nil)
	peers.set(true, true) // rejected, and the compensation fails until replayed
	in = batch(1)
	id = workflows.SettlementWorkflowID("alpha-main", "alpha-op1", in.Transfers[0].ID)
	record("settlement-parked-replayed", id, workflows.SettlementWorkflowName, in, func() {
		time.Sleep(time.Second)
		peers.set(true, false)
		require.NoError(t, tc.Client.SignalWorkflow(ctx, id, "", workflows.SignalSagaReplay, nil))
	})
	recordDisputeHistories(ctx, tc, disputes, record)
	recordFederationSyncHistories(t, ctx, tc, record)
}

// memCheckpointLedger writes checkpoints covering ever higher numbers.
type memCheckpointLedger struct {
	mu     sync.Mutex
	covers int64
}

func (l *memCheckpointLedger) WriteBalanceCheckpoint(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.covers += 10
	return l.covers, nil
}

func (l *memCheckpointLedger) LastBalanceCheckpointAt(context.Context) (time.Time, error) {
	return time.Time{}, nil
}

// countdownExpirer expires up to limit of the holds left.
type countdownExpirer struct {
	mu   sync.Mutex
	left int
}

func (e *countdownExpirer) ExpireHolds(_ context.Context, limit int) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := min(limit, e.left)
	e.left -= n
	return n, nil
}

// fixedSweeper settles the same number of stale prepares each sweep.
type fixedSweeper int

func (f fixedSweeper) SweepStalePrepares(context.Context) (int, error) { return int(f), nil }

// memSettlementLedger is a source ledger that decides as asked.
type memSettlementLedger struct {
	mu   sync.Mutex
	recs map[uuid.UUID]activities.XferRecord
}

// accept records in's transfers as pending.
func (m *memSettlementLedger) accept(in workflows.SettlementInput) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = map[uuid.UUID]activities.XferRecord{}
	}
	for _, it := range in.Transfers {
		m.recs[it.ID] = activities.XferRecord{ID: it.ID, Target: in.Target, Status: xferstate.Pending,
			Terms: xferstate.Terms{From: it.From, To: it.To, AmountUnits: it.AmountUnits}}
	}
}

func (m *memSettlementLedger) Records(_ context.Context, ids []uuid.UUID) (map[uuid.UUID]activities.XferRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[uuid.UUID]activities.XferRecord{}
	for _, id := range ids {
		if r, ok := m.recs[id]; ok {
			out[id] = r
		}
	}
	return out, nil
}

func (m *memSettlementLedger) Decide(_ context.Context, ds []activities.XferDecision) ([]activities.XferOutcome, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]activities.XferOutcome, len(ds))
	for i, d := range ds {
		out[i] = activities.XferOutcome{ID: d.ID, Status: xferstate.Aborted, Reason: d.Reason}
		if d.KeepHoldOnAbort {
			out[i].Status = xferstate.Aborting
		}
		if d.Commit {
			out[i].Status = xferstate.Committing
		}
		r := m.recs[d.ID]
		r.Status = out[i].Status
		m.recs[d.ID] = r
	}
	return out, nil
}
func (*memSettlementLedger) Finish(context.Context, map[uuid.UUID]int64) error { return nil }
func (*memSettlementLedger) VoidAborted(context.Context, []uuid.UUID) error    { return nil }

// scriptedPeers answers like a target that prepares everything, or rejects
// everything; failAbort makes the compensation fail (non-retryable, so the
// saga parks at once).
type scriptedPeers struct {
	mu                sync.Mutex
	reject, failAbort bool
}

func (p *scriptedPeers) set(reject, failAbort bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reject, p.failAbort = reject, failAbort
}

func (p *scriptedPeers) Prepare(_ context.Context, _ string, xs []activities.XferRecord) ([]activities.XferVote, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]activities.XferVote, len(xs))
	for i, x := range xs {
		out[i] = activities.XferVote{ID: x.ID, Status: xferstate.Prepared, FeeUnits: 5000, Terms: &x.Terms}
		if p.reject {
			out[i] = activities.XferVote{ID: x.ID, Status: xferstate.Rejected, Reason: "unknown receiver"}
		}
	}
	return out, nil
}

func (p *scriptedPeers) Commit(_ context.Context, _ string, xs []activities.XferRecord) ([]activities.XferVote, error) {
	out := make([]activities.XferVote, len(xs))
	for i, x := range xs {
		out[i] = activities.XferVote{ID: x.ID, Status: xferstate.Committed, FeeUnits: 5000}
	}
	return out, nil
}

func (p *scriptedPeers) Abort(_ context.Context, _ string, ids []uuid.UUID) ([]activities.XferVote, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failAbort {
		return nil, apperr.New(apperr.Forbidden, "target refuses")
	}
	out := make([]activities.XferVote, len(ids))
	for i, id := range ids {
		out[i] = activities.XferVote{ID: id, Status: xferstate.Aborted}
	}
	return out, nil
}

// writeHistory writes the history of workflow run id/runID to
// testdata/histories/<name>.json, as the replay test reads it.
func writeHistory(t *testing.T, c client.Client, id, runID, name string) {
	t.Helper()
	hist := &historypb.History{}
	it := c.GetWorkflowHistory(context.Background(), id, runID, false, 0)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, e)
	}
	raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(historyDir, name+".json"), raw, 0o644))
}
