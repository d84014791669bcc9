package main

import (
	"bytes"
	"context"
	"encoding/json"

	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/devstack"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/testenv/logbuf"
	"github.com/theprotocol-dev/theprotocol/worker"
)

// binary returns the theprotocol binary: THEPROTOCOL_BIN (make test builds
// it) or a fresh build.
func binary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("THEPROTOCOL_BIN"); b != "" {
		return b
	}
	out := filepath.Join(t.TempDir(), "theprotocol")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run())
	return out
}

type devRun struct {
	cmd  *exec.Cmd
	log  *logbuf.Buffer
	done chan error
}

func startDev(t *testing.T, bin, dataDir, topo string, ports []int) *devRun {
	t.Helper()
	root, err := testenv.ModuleRoot()
	require.NoError(t, err)
	cmd := exec.Command(bin, "dev", "-data-dir", dataDir, "-topology", topo,
		"-postgres-port", strconv.Itoa(ports[0]), "-temporal-port", strconv.Itoa(ports[1]),
		"-temporal-ui-port", strconv.Itoa(ports[2]), "-kafka-port", strconv.Itoa(ports[3]),
		"-temporal-bin", filepath.Join(root, "bin", "temporal"))
	cmd.Env = os.Environ()
	log := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	r := &devRun{cmd: cmd, log: log, done: make(chan error, 1)}
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
	})
	return r
}

func waitEndpoints(t *testing.T, r *devRun, path string) Endpoints {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-r.done:
			t.Fatalf("dev exited early: %v\n%s", err, r.log.String())
		default:
		}
		if raw, err := os.ReadFile(path); err == nil {
			var ep Endpoints
			require.NoError(t, json.Unmarshal(raw, &ep))
			return ep
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no endpoints.json after 3 minutes\n%s", r.log.String())
	return Endpoints{}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// processesMentioning lists PIDs whose command line contains s.
func processesMentioning(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(bytes.ReplaceAll(raw, []byte{0}, []byte{' '})), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestDevStackLifecycle runs `theprotocol dev` as a user would: everything
// comes up ready, Ctrl-C (SIGINT) leaves no process behind, and a second
// start reuses the state in the data directory.
func TestDevStackLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole dev stack twice")
	}
	t.Parallel()
	bin := binary(t)
	dataDir, err := os.MkdirTemp("", "theprotocol-devtest-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dataDir) })

	// The demo topology with every port chosen by the OS, so the test
	// never collides with a running `make run`.
	topo := config.DevTopology()
	for fi := range topo.Frames {
		for ri := range topo.Frames[fi].Registries {
			topo.Frames[fi].Registries[ri].APIPort = 0
			// Free mTLS ports known up front: the frame's TEGs peer through
			// them at start (the mainframe funds alpha-op1 over them).
			mp, err := devstack.FreePort("127.0.0.1")
			require.NoError(t, err)
			topo.Frames[fi].Registries[ri].MTLSPort = mp
			topo.Frames[fi].Registries[ri].BundlePort = 0
		}
	}
	topoPath := filepath.Join(dataDir, "topology.json")
	raw, err := json.Marshal(topo)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(topoPath, raw, 0o644))
	var ports []int
	for range 4 {
		p, err := devstack.FreePort("127.0.0.1")
		require.NoError(t, err)
		ports = append(ports, p)
	}
	epPath := filepath.Join(dataDir, "endpoints.json")
	ctx := context.Background()

	// --- first run ---
	run := startDev(t, bin, dataDir, topoPath, ports)
	ep := waitEndpoints(t, run, epPath)
	require.Len(t, ep.Nodes, 3)
	for _, n := range ep.Nodes {
		code, body := get(t, n.ReadyURL)
		require.Equal(t, 200, code, "%s: %s", n.Registry, body)
		require.True(t, strings.HasPrefix(n.APIURL, "http://127.0.0.1:"), "listeners bind loopback")
		require.True(t, strings.HasPrefix(n.MTLSURL, "https://127.0.0.1:"), "the mTLS listener is up: %q", n.MTLSURL)
		require.Contains(t, n.SPIFFEID, "spiffe://"+n.TrustDomain+"/teg/"+n.Registry)
		code, body = get(t, n.MetricsURL)
		require.Equal(t, 200, code)
		require.Contains(t, body, "http_requests_total")
	}
	code, body := get(t, ep.Temporal.UIURL+"/api/v1/namespaces")
	require.Equal(t, 200, code)
	for _, ns := range []string{"alpha-main", "alpha-op1", "beta-main"} {
		require.Contains(t, body, `"`+ns+`"`, "the UI lists namespace %s", ns)
	}

	// The federation walk and card syncs start once every registry
	// listens: alpha-main's walk reaches alpha-op1, and no registry met a
	// sibling that was not listening yet.
	var alphaMain EndpointsNode
	for _, n := range ep.Nodes {
		if n.Registry == "alpha-main" {
			alphaMain = n
		}
	}
	require.Eventually(t, func() bool {
		code, body := get(t, alphaMain.APIURL+"/api/v1/federation/topology")
		return code == 200 && strings.Contains(body, `"registry":"alpha-op1"`)
	}, 60*time.Second, 200*time.Millisecond, "alpha-main's federation walk reaches alpha-op1")
	var refused []string
	for _, l := range strings.Split(run.log.String(), "\n") {
		if strings.Contains(l, "connection refused") {
			refused = append(refused, l)
		}
	}
	require.Empty(t, refused, "a registry called a sibling before it listened")

	// The mainframe funded alpha-op1's treasury through the saga.
	fundedOp1 := node.DevOperatorFundingUnits - node.DevOperatorFundingUnits/200 // less op1's fee
	require.Eventually(t, func() bool { return devTreasury(t, ep, "alpha_op1_teg") == fundedOp1 }, 60*time.Second, 200*time.Millisecond,
		"alpha-op1's treasury is funded at first start")

	// Leave state behind in every service: a Postgres row, a Kafka record,
	// and remember the schedule the worker created.
	conn, err := pgx.Connect(ctx, strings.Replace(ep.Postgres.AdminURL, "/postgres?", "/alpha_main_teg?", 1))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE TABLE devtest_marker (v text); INSERT INTO devtest_marker VALUES ('kept')`)
	require.NoError(t, err)
	conn.Close(ctx)
	kc, err := kgo.NewClient(kgo.SeedBrokers(ep.Kafka.Brokers...))
	require.NoError(t, err)
	require.NoError(t, kc.ProduceSync(ctx, &kgo.Record{Topic: "alpha.events", Key: []byte("k"), Value: []byte("kept")}).FirstErr())
	kc.Close()
	tc, err := client.Dial(client.Options{HostPort: ep.Temporal.Address, Namespace: "alpha-main", Logger: nopLogger{}})
	require.NoError(t, err)
	desc, err := tc.ScheduleClient().GetHandle(ctx, worker.IdempotencySweepScheduleID("alpha-main")).Describe(ctx)
	require.NoError(t, err)
	createdAt := desc.Info.CreatedAt
	tc.Close()

	require.NotEmpty(t, processesMentioning(dataDir), "children run with the data dir on their command line")
	require.NoError(t, run.cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-run.done:
		require.NoError(t, err, run.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("dev did not stop within 60s of SIGINT\n%s", stuckDev(run))
	}
	require.Eventually(t, func() bool { return len(processesMentioning(dataDir)) == 0 }, 10*time.Second, 100*time.Millisecond,
		"no process of ours survives Ctrl-C: %v", processesMentioning(dataDir))
	_, err = os.Stat(epPath)
	require.True(t, os.IsNotExist(err), "endpoints.json is removed on stop")

	// --- second run: same data dir ---
	run = startDev(t, bin, dataDir, topoPath, ports)
	ep = waitEndpoints(t, run, epPath)
	for _, n := range ep.Nodes {
		code, body := get(t, n.ReadyURL)
		require.Equal(t, 200, code, "%s: %s", n.Registry, body)
	}
	require.NotContains(t, run.log.String(), "initialising PostgreSQL cluster")
	// The start-up funding replayed: one allocation ever, paid once.
	conn, err = pgx.Connect(ctx, strings.Replace(ep.Postgres.AdminURL, "/postgres?", "/alpha_main_teg?", 1))
	require.NoError(t, err)
	var allocations int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM xfers WHERE sender = 'treasury' AND receiver = 'treasury'`).Scan(&allocations))
	conn.Close(ctx)
	require.Equal(t, 1, allocations)
	require.Equal(t, fundedOp1, devTreasury(t, ep, "alpha_op1_teg"))
	conn, err = pgx.Connect(ctx, strings.Replace(ep.Postgres.AdminURL, "/postgres?", "/alpha_main_teg?", 1))
	require.NoError(t, err)
	var v string
	require.NoError(t, conn.QueryRow(ctx, `SELECT v FROM devtest_marker`).Scan(&v))
	require.Equal(t, "kept", v)
	conn.Close(ctx)

	kc, err = kgo.NewClient(kgo.SeedBrokers(ep.Kafka.Brokers...), kgo.ConsumeTopics("alpha.events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	// The topic also carries the stack's own events (genesis mint…); the
	// record written before the restart must still be there.
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	var values []string
	for fctx.Err() == nil && !slices.Contains(values, "kept") {
		fetches := kc.PollFetches(fctx)
		fetches.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	cancel()
	require.Contains(t, values, "kept", "the broker kept its data")
	kc.Close()

	tc, err = client.Dial(client.Options{HostPort: ep.Temporal.Address, Namespace: "alpha-main", Logger: nopLogger{}})
	require.NoError(t, err)
	desc, err = tc.ScheduleClient().GetHandle(ctx, worker.IdempotencySweepScheduleID("alpha-main")).Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, createdAt, desc.Info.CreatedAt, "Temporal kept the schedule from the first run")
	tc.Close()

	require.NoError(t, run.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-run.done:
		require.NoError(t, err, run.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("dev did not stop within 60s of SIGTERM\n%s", stuckDev(run))
	}
	require.Eventually(t, func() bool { return len(processesMentioning(dataDir)) == 0 }, 10*time.Second, 100*time.Millisecond)
}

// stuckDev asks a dev process that will not stop for its goroutines
// (SIGQUIT makes the Go runtime print them and exit) and returns its log, so
// a hang in CI names the stuck call instead of just the timeout.
func stuckDev(r *devRun) string {
	_ = r.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
	}
	return r.log.String()
}

type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}

// devTreasury reads the treasury's liquid balance in the TEG database db.
func devTreasury(t *testing.T, ep Endpoints, db string) int64 {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), strings.Replace(ep.Postgres.AdminURL, "/postgres?", "/"+db+"?", 1))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var units int64
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT units FROM balances WHERE account_id = 'treasury' AND bucket = 'liquid'`).Scan(&units))
	return units
}
