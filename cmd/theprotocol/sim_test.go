package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/sim"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/testenv/logbuf"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// simStack starts a two-registry frame (a mainframe with the EventStore
// and an operator registry, peered over mTLS) in this process on the test
// services, writes its endpoints file as the dev stack does, and returns
// the simulation's target.
func simStack(t *testing.T) (sim.Target, []*node.Node, config.Frame) {
	ctx := context.Background()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	mf := config.Registry{ID: "sm" + suffix, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
	op := config.Registry{ID: "so" + suffix, Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace}
	frame := config.Frame{ID: "fs" + suffix, TrustDomain: "fs" + suffix + ".theprotocol.test", Currency: "AVT", Genesis: true,
		GenesisSupplyUnits: 10_000_000 * 100_000_000, Registries: []config.Registry{mf, op}}
	topo := config.Topology{Frames: []config.Frame{frame}}
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	svc := services{PostgresAdminURL: testenv.PostgresURL(t), TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t)}
	t.Cleanup(func() {
		dropDatabases(t, svc.PostgresAdminURL, mf.DBName(config.RoleRegistry), mf.DBName(config.RoleTEG), frame.EventStoreDBName(),
			op.DBName(config.RoleRegistry), op.DBName(config.RoleTEG))
	})
	nodes, err := startNodes(ctx, cfg, topo, svc, nil, true, quietLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { stopNodes(nodes, 30*time.Second) })
	t.Cleanup(func() {
		for _, reg := range []string{mf.ID, op.ID} {
			for _, prefix := range []string{"idempotency-sweep-", "hold-expiry-", "staking-rewards-", "balance-checkpoint-", "xfer-prepare-sweep-"} {
				_ = nodes[0].Temporal.ScheduleClient().GetHandle(context.Background(), prefix+reg).Delete(context.Background())
			}
		}
	})
	require.NoError(t, nodes[0].ConnectPeer(ctx, op.ID, nodes[1].MTLSURL()))
	require.NoError(t, nodes[1].ConnectPeer(ctx, mf.ID, nodes[0].MTLSURL()))

	ep := buildEndpoints(topo, nodes, svc, cfg.DataDir)
	path := filepath.Join(cfg.DataDir, "endpoints.json")
	require.NoError(t, writeJSONAtomic(path, ep))
	target, err := sim.LoadEndpoints(path)
	require.NoError(t, err)
	return target, nodes, frame
}

func quietLogger(t *testing.T) *slog.Logger {
	buf := &logbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// A few seconds of the default mix against an in-process topology end
// with every invariant exactly zero; a projection row changed behind the
// EventStore's back is then named by the checks.
func TestSimEndsAtZeroAndNamesACorruptedProjection(t *testing.T) {
	testenv.SkipWithoutServices(t)
	t.Parallel()
	target, nodes, frame := simStack(t)
	mix, err := sim.ParseMix(sim.DefaultMix)
	require.NoError(t, err)
	progress := &logbuf.Buffer{}
	s, err := sim.New(sim.Config{
		Target: target, Duration: 4 * time.Second, Agents: 6, Workers: 4, Mix: mix,
		RetryFor: 30 * time.Second, SettleTimeout: 2 * time.Minute, Progress: progress, ProgressLines: true,
	})
	require.NoError(t, err)
	ctx := context.Background()
	rep, err := s.Run(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		tc := nodes[0].Temporal
		for _, did := range rep.Agents {
			_ = tc.TerminateWorkflow(context.Background(), workflows.BondWorkflowID(did), "", "test over")
		}
		for _, reg := range []string{frame.Registries[0].ID, frame.Registries[1].ID} {
			for _, pos := range rep.Positions {
				_ = tc.TerminateWorkflow(context.Background(), workflows.UnstakeCooldownWorkflowID(reg, pos), "", "test over")
			}
		}
	})
	t.Logf("progress:\n%s%s", progress.String(), rep.Summary.Table())
	require.Empty(t, rep.Differences)
	ok := map[string]int64{}
	for _, k := range rep.Summary.Kinds {
		ok[k.Kind] = k.OK
	}
	for _, kind := range []string{"transfer", "xfer", "hold", "stake"} {
		require.Positive(t, ok[kind], "some %s was acknowledged: %s", kind, rep.Summary.Table())
	}
	require.Contains(t, progress.String(), "ops ")
	require.Positive(t, rep.Xfers["committed"], "cross-registry transfers settled: %v", rep.Xfers)

	// One unit added to an agent's projected balance, as a bug or a hand
	// would: the checks must name the account, and the reconciliation
	// must see the projection differ from the TEG's checkpoint.
	victim := rep.Agents[0]
	conn, err := pgx.Connect(ctx, strings.Replace(target.PostgresAdminURL, "/postgres?", "/"+frame.EventStoreDBName()+"?", 1))
	require.NoError(t, err)
	tag, err := conn.Exec(ctx, `UPDATE projection_balances SET balance = balance + 1 WHERE account = $1 AND bucket = 'liquid'`, victim)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	conn.Close(ctx)
	diffs := s.Check(ctx)
	joined := strings.Join(diffs, "\n")
	require.Contains(t, joined, "projection of "+victim, joined)
	require.Contains(t, joined, "reconciliation of "+frame.Registries[0].ID, joined)
}
