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
	"github.com/theprotocol-dev/theprotocol/devstack"
	"github.com/theprotocol-dev/theprotocol/sim"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/testenv/logbuf"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// simStack starts a two-registry frame (a mainframe with the EventStore
// and an operator registry, peered over mTLS) in this process on the test
// services, with the dev stack's control endpoint, writes its endpoints
// file as the dev stack does, and returns the simulation's target. With
// privateKafka the frame gets a broker of its own (which the control
// endpoint may stop) and fixed ports (a restarted node keeps its
// addresses).
func simStack(t *testing.T, privateKafka bool) (sim.Target, *devControl, config.Frame) {
	ctx := context.Background()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	mf := config.Registry{ID: "sm" + suffix, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
	op := config.Registry{ID: "so" + suffix, Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace}
	if privateKafka {
		for _, r := range []*config.Registry{&mf, &op} {
			for _, p := range []*int{&r.APIPort, &r.MTLSPort} {
				port, err := devstack.FreePort("127.0.0.1")
				require.NoError(t, err)
				*p = port
			}
		}
	}
	frame := config.Frame{ID: "fs" + suffix, TrustDomain: "fs" + suffix + ".theprotocol.test", Currency: "AVT", Genesis: true,
		GenesisSupplyUnits: 10_000_000 * 100_000_000, Registries: []config.Registry{mf, op}}
	topo := config.Topology{Frames: []config.Frame{frame}}
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	log := quietLogger(t)
	svc := services{PostgresAdminURL: testenv.PostgresURL(t), TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t)}
	ctl := &devControl{ctx: ctx, cfg: cfg, topo: topo, log: log, dataDir: cfg.DataDir}
	if privateKafka {
		opts := devstack.KafkaOptions{DataDir: filepath.Join(cfg.DataDir, "kafka"), Topics: topo.Topics()}
		k, err := devstack.StartKafka(opts)
		require.NoError(t, err)
		ctl.setKafka(k, opts)
		t.Cleanup(ctl.closeKafka)
		svc.KafkaBrokers = []string{k.Addr()}
	}
	t.Cleanup(func() {
		dropDatabases(t, svc.PostgresAdminURL, mf.DBName(config.RoleRegistry), mf.DBName(config.RoleTEG), frame.EventStoreDBName(),
			op.DBName(config.RoleRegistry), op.DBName(config.RoleTEG))
	})
	nodes, err := startNodes(ctx, cfg, topo, svc, nil, true, log)
	require.NoError(t, err)
	ctl.svc, ctl.nodes = svc, nodes
	t.Cleanup(ctl.closeNodes)
	t.Cleanup(func() {
		for _, reg := range []string{mf.ID, op.ID} {
			for _, prefix := range []string{"idempotency-sweep-", "hold-expiry-", "staking-rewards-", "balance-checkpoint-", "xfer-prepare-sweep-"} {
				_ = nodes[0].Temporal.ScheduleClient().GetHandle(context.Background(), prefix+reg).Delete(context.Background())
			}
		}
	})
	if !privateKafka {
		// OS-chosen mTLS ports: the topology cannot name the peers.
		require.NoError(t, nodes[0].ConnectPeer(ctx, op.ID, nodes[1].MTLSURL()))
		require.NoError(t, nodes[1].ConnectPeer(ctx, mf.ID, nodes[0].MTLSURL()))
	}
	require.NoError(t, ctl.start("127.0.0.1"))
	t.Cleanup(ctl.closeListener)
	ctl.epPath = filepath.Join(cfg.DataDir, "endpoints.json")
	require.NoError(t, ctl.rewriteEndpoints())
	target, err := sim.LoadEndpoints(ctl.epPath)
	require.NoError(t, err)
	require.NotEmpty(t, target.ControlURL)
	return target, ctl, frame
}

// cleanupWorkflows ends the workflows a run left in the shared test
// namespace (bonds, unstake cooldowns).
func cleanupWorkflows(t *testing.T, ctl *devControl, frame config.Frame, rep *sim.Report) {
	t.Cleanup(func() {
		ctl.mu.Lock()
		tc := ctl.nodes[0].Temporal
		ctl.mu.Unlock()
		for _, did := range rep.Agents {
			_ = tc.TerminateWorkflow(context.Background(), workflows.BondWorkflowID(did), "", "test over")
		}
		for _, reg := range []string{frame.Registries[0].ID, frame.Registries[1].ID} {
			for _, pos := range rep.Positions {
				_ = tc.TerminateWorkflow(context.Background(), workflows.UnstakeCooldownWorkflowID(reg, pos), "", "test over")
			}
		}
	})
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
	target, ctl, frame := simStack(t, false)
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
	cleanupWorkflows(t, ctl, frame, &rep)
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
	require.Contains(t, joined, "replay: "+victim+"/liquid projected", joined)

	// The command exits 1 on it, even for a population that never touched
	// the corrupted account (the reconciliation covers the whole frame).
	err = runSim(ctx, []string{"-endpoints", ctl.epPath, "-duration", "1s", "-agents", "2", "-workers", "1", "-mix", "transfer=1", "-settle-timeout", "2m"})
	require.Equal(t, exitError(1), err)
}

// The mainframe (registry, TEG, EventStore) restarts and the frame's Kafka
// broker stops for three seconds while agents pay each other: requests
// fail and are retried with their keys, the relays catch up, and the run
// still ends with every invariant exactly zero.
func TestSimSurvivesANodeRestartAndAKafkaStop(t *testing.T) {
	testenv.SkipWithoutServices(t)
	t.Parallel()
	target, ctl, frame := simStack(t, true)
	mix, err := sim.ParseMix(sim.DefaultMix)
	require.NoError(t, err)
	faults, err := sim.ParseChaos("node,kafka=3s", target)
	require.NoError(t, err)
	require.Equal(t, frame.Registries[0].ID, faults[0].Registry, "the EventStore's node restarts by default")
	const d = 9 * time.Second
	progress := &logbuf.Buffer{}
	s, err := sim.New(sim.Config{
		Target: target, Duration: d, Agents: 6, Workers: 4, Mix: mix, Rate: 60,
		RetryFor: time.Minute, SettleTimeout: 2 * time.Minute, Progress: progress, ProgressLines: true,
		Chaos: sim.Chaos(target.ControlURL, faults, d),
	})
	require.NoError(t, err)
	rep, err := s.Run(context.Background())
	require.NoError(t, err)
	cleanupWorkflows(t, ctl, frame, &rep)
	t.Logf("progress:\n%s%s\ncross-registry: %v", progress.String(), rep.Summary.Table(), rep.Xfers)
	require.Empty(t, rep.Differences)
	failed := int64(0)
	for _, k := range rep.Summary.Kinds {
		failed += k.Errors["transport"] + k.Errors["unavailable"]
	}
	require.Positive(t, failed, "the restart was felt: %s", rep.Summary.Table())
}
