package worker_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

var update = flag.Bool("update", false, "record workflow histories into testdata/histories from runs on the dev server")

const historyDir = "testdata/histories"

func registerAll(r interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
}) {
	r.RegisterWorkflowWithOptions(workflows.IdempotencySweep, workflow.RegisterOptions{Name: "IdempotencySweep"})
	r.RegisterWorkflowWithOptions(workflows.BondMaturation, workflow.RegisterOptions{Name: workflows.BondWorkflowName})
	registerStakingWorkflows(r)
}

// TestReplayCommittedHistories replays every recorded history against the
// current workflow code: a change that breaks determinism for running
// workflows fails here ([TMPRL1100]) and must go behind workflow.GetVersion.
func TestReplayCommittedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(historyDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "recorded histories are committed (go test ./worker -run TestRecordHistories -update)")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := sdkworker.NewWorkflowReplayer()
			registerAll(r)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

type memBondLedger struct {
	mu    sync.Mutex
	moves map[string]int64
}

func (m *memBondLedger) ReleaseBond(_ context.Context, _ string, amount int64, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.moves[key] = amount
	return nil
}
func (m *memBondLedger) ForfeitBond(ctx context.Context, did string, amount int64, key string) error {
	return m.ReleaseBond(ctx, did, amount, key)
}

func (m *memBondLedger) VoidBond(ctx context.Context, did, _ string, amount int64, key string) error {
	return m.ReleaseBond(ctx, did, amount, key)
}

type fixedCriteria struct{ transfers, trust int64 }

func (f fixedCriteria) AgentState(context.Context, string) (string, error) {
	return activities.AgentActive, nil
}
func (f fixedCriteria) TransferCount(context.Context, string) (int64, error) { return f.transfers, nil }
func (f fixedCriteria) TrustScore(context.Context, string) (int64, error)    { return f.trust, nil }

// TestRecordHistories runs each workflow on the real dev server and writes
// its history; only with -update.
func TestRecordHistories(t *testing.T) {
	if !*update {
		t.Skip("records histories only with -update")
	}
	ctx := context.Background()
	tc := testenv.NewTemporal(t)
	w := sdkworker.New(tc.Client, tc.TaskQueue, sdkworker.Options{})
	registerAll(w)
	w.RegisterActivity(&activities.Sweeper{Stores: []activities.IdempotencySweeper{}})
	w.RegisterActivity(&activities.Bonds{Ledger: &memBondLedger{moves: map[string]int64{}}, Criteria: fixedCriteria{transfers: 20, trust: 9000}})
	require.NoError(t, w.Start())
	defer w.Stop()
	require.NoError(t, os.MkdirAll(historyDir, 0o755))

	record := func(name, id string, wf string, arg any, during func()) {
		run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tc.TaskQueue}, wf, arg)
		require.NoError(t, err)
		if during != nil {
			during()
		}
		require.NoError(t, run.Get(ctx, nil))
		hist := &historypb.History{}
		it := tc.Client.GetWorkflowHistory(ctx, id, run.GetRunID(), false, 0)
		for it.HasNext() {
			e, err := it.Next()
			require.NoError(t, err)
			hist.Events = append(hist.Events, e)
		}
		raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(historyDir, name+".json"), raw, 0o644))
	}
	suffix := time.Now().Format("150405")
	record("idempotency-sweep", "replay-sweep-"+suffix, "IdempotencySweep", workflows.IdempotencySweepInput{Retention: 48 * time.Hour}, nil)
	record("bond-matured", "replay-bond-m-"+suffix, workflows.BondWorkflowName,
		workflows.BondInput{AgentDID: "did:theprotocol:replay-m", AmountUnits: 5_000_000_000, MinAge: time.Second, RecheckEvery: time.Second}, nil)
	id := "replay-bond-f-" + suffix
	record("bond-forfeited", id, workflows.BondWorkflowName,
		workflows.BondInput{AgentDID: "did:theprotocol:replay-f", AmountUnits: 5_000_000_000, MinAge: time.Hour}, func() {
			time.Sleep(500 * time.Millisecond)
			require.NoError(t, tc.Client.SignalWorkflow(ctx, id, "", workflows.SignalBondDeregistered, nil))
		})
}
