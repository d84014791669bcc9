package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// envBridgeOriginChild carries a bridgeOriginSpec to the child process
// that TestBridgeOriginProcess turns into frame A's mainframe.
const envBridgeOriginChild = "THEPROTOCOL_TEST_BRIDGE_ORIGIN"

// bridgeOriginSpec is what the child needs to run frame A's mainframe and
// reach frame B's.
type bridgeOriginSpec struct {
	Frame            config.Frame
	Registry         config.Registry
	PostgresAdminURL string
	TemporalAddr     string
	KafkaBrokers     []string
	DataDir          string
	Window           time.Duration
	// PeerCards are the frame cards it bridges with (-bridge-peer-cards).
	PeerCards string
	// CrashAt ("apply", "apply/after") is the client call to B at which
	// the child stops; CrashServing ("apply") is the participant call
	// from B (a redemption's release) at which it stops before applying.
	CrashAt, CrashServing string
}

// TestBridgeOriginProcess is not a test of its own: it is frame A's
// mainframe of TestBridgeSurvivesOriginSIGKILL, run in a child process
// (the test binary re-executed) so that it can be killed for real. It
// skips unless that test started it.
func TestBridgeOriginProcess(t *testing.T) {
	raw := os.Getenv(envBridgeOriginChild)
	if raw == "" {
		t.Skip("frame A of TestBridgeSurvivesOriginSIGKILL; runs only as its child process")
	}
	var spec bridgeOriginSpec
	require.NoError(t, json.Unmarshal([]byte(raw), &spec))
	bs := config.DefaultBridgeSettings()
	bs.Window = spec.Window
	bs.PeerCards = spec.PeerCards
	n, err := node.Start(context.Background(), node.Options{
		Frame: spec.Frame, Registry: spec.Registry, PostgresAdminURL: spec.PostgresAdminURL,
		TemporalAddr: spec.TemporalAddr, KafkaBrokers: spec.KafkaBrokers,
		DataDir: spec.DataDir, WriteAdminCredentials: true, Log: quietLog, BridgeSettings: bs,
	})
	require.NoError(t, err)
	// Not connected to frame B again: the node admits and calls the peer
	// frames it recorded, from before its listener serves.
	hold := func(at, want string) {
		if at != "" && at == want {
			fmt.Println(childCrashAt)
			select {} // mid-call, until the parent kills the process
		}
	}
	n.Bridge.Client.Fault = func(op, _ string, after bool) error {
		if after {
			op += "/after"
		}
		hold(op, spec.CrashAt)
		return nil
	}
	n.Bridge.Participant.Fault = func(op string, after bool) error {
		if !after {
			hold(op, spec.CrashServing)
		}
		return nil
	}
	fmt.Println(childReady)
	select {}
}

// startFixedBridgeFrames is startBridgeFrames on fixed ports, so that a
// mainframe keeps its addresses when it is restarted (the other frame's
// directory and pinned bundle point at them), and returns both nodes'
// options to restart them with.
// windowA bounds A's sends, windowB B's redemptions.
func startFixedBridgeFrames(t *testing.T, windowA, windowB time.Duration) (*bridgeFrames, node.Options, node.Options) {
	ctx := context.Background()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	f := &bridgeFrames{t: t, dirA: t.TempDir(), dirB: t.TempDir(), faults: map[string]int{}}
	ports := freePorts(t, 6)
	options := func(id, currency, dir string, p []int, window time.Duration) node.Options {
		bs := config.DefaultBridgeSettings()
		bs.Window = window
		reg := config.Registry{ID: id + "-main" + suffix, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"},
			Namespace: testenv.TestNamespace, APIPort: p[0], MTLSPort: p[1], BundlePort: p[2]}
		fr := config.Frame{ID: id + suffix, TrustDomain: id + suffix + ".theprotocol.test", Currency: currency, Genesis: currency == "AVT",
			GenesisSupplyUnits: 1_000_000 * avt, Registries: []config.Registry{reg}}
		return node.Options{
			Frame: fr, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t),
			TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
			DataDir: dir, WriteAdminCredentials: true, Log: quietLog, BridgeSettings: bs,
		}
	}
	oa, ob := options("ca", "AVT", f.dirA, ports[:3], windowA), options("cb", "BVT", f.dirB, ports[3:], windowB)
	f.fa, f.fb = oa.Frame, ob.Frame
	f.a = f.startNode(oa)
	f.b = f.startNode(ob)
	require.NoError(t, node.ConnectFrames(ctx, f.a, f.b))
	f.ca, f.cb = httpClient{t, f.a.URL()}, httpClient{t, f.b.URL()}
	f.adminA = f.ca.adminToken(f.dirA, f.fa.Registries[0].ID)
	f.adminB = f.cb.adminToken(f.dirB, f.fb.Registries[0].ID)
	f.alice, f.aliceT = bridgeAgent(t, f.ca, f.adminA, "alice-"+suffix)
	f.bob, f.bobT = bridgeAgent(t, f.cb, f.adminB, "bob-"+suffix)
	t.Cleanup(func() { terminateBonds(f.a, f.alice); terminateBonds(f.b, f.bob) })
	require.Equal(t, 201, f.ca.call("POST", "/api/v1/admin/grants", f.adminA, map[string]any{"to": f.alice, "amount": "1000", "reason": "e2e"}, nil))
	return f, oa, ob
}

// startNode starts (or restarts) a mainframe in this process.
func (f *bridgeFrames) startNode(o node.Options) *node.Node {
	n, err := node.Start(context.Background(), o)
	require.NoError(f.t, err)
	side := "a"
	if o.Frame.ID != f.fa.ID {
		side = "b"
	}
	n.Bridge.Client.Fault = func(op, _ string, after bool) error { return f.fault(side, op, after) }
	f.t.Cleanup(func() { n.Stop(context.Background()) })
	f.t.Cleanup(func() { deleteSchedules(n, o.Registry.ID) })
	return n
}

// restart brings a stopped (or killed) mainframe back in this process.
// Nothing connects the frames again and the other frame's calls are not
// held back: the restarted mainframe admits the peer frames it recorded
// before its listener serves, so a retried call arriving at once is
// admitted (a refusal would be taken as definitive: a redemption would be
// re-minted, not completed).
func (f *bridgeFrames) restart(o node.Options) {
	n := f.startNode(o)
	if o.Frame.ID == f.fa.ID {
		f.a = n
	} else {
		f.b = n
	}
	require.Equal(f.t, fmt.Sprintf("http://127.0.0.1:%d", o.Registry.APIPort), n.URL())
}

// settled waits until both EventStores projected every bridge balance
// (a restarted node's consumer may take a while to rejoin its group);
// consistent then checks.
func (f *bridgeFrames) settled(d time.Duration) {
	f.t.Helper()
	for _, side := range []struct {
		n   *node.Node
		reg string
	}{{f.a, f.fa.Registries[0].ID}, {f.b, f.fb.Registries[0].ID}} {
		n := side.n
		require.Eventually(f.t, func() bool {
			rows, err := n.Pools[db.RoleTEG].Query(context.Background(),
				`SELECT account_id, bucket, units FROM balances WHERE bucket LIKE 'wrapped:%' OR bucket = 'locked_bridge' OR account_id LIKE 'did:%'`)
			require.NoError(f.t, err)
			defer rows.Close()
			for rows.Next() {
				var acct, bucket string
				var units, proj int64
				require.NoError(f.t, rows.Scan(&acct, &bucket, &units))
				_ = n.Pools[db.RoleEventStore].QueryRow(context.Background(),
					`SELECT coalesce((SELECT balance FROM projection_balances WHERE account = $1 AND bucket = $2), 0)`,
					ingest.Qualify(side.reg, acct), bucket).Scan(&proj)
				if proj != units {
					return false
				}
			}
			return true
		}, d, 250*time.Millisecond, "the EventStore of %s catches up", side.reg)
	}
	f.consistent()
}

// mints reports whether B applied a send's mint (whatever answer reached
// A); the balances say whether it was applied only once.
func (f *bridgeFrames) mints(id uuid.UUID) int {
	f.t.Helper()
	var n int
	require.NoError(f.t, f.b.Pools[db.RoleTEG].QueryRow(context.Background(),
		`SELECT count(*) FROM bridge_inbound WHERE id = $1 AND kind = 'mint' AND status = 'applied'`, id).Scan(&n))
	return n
}

// finish waits for a send or redemption to end and returns it.
func (f *bridgeFrames) finish(c httpClient, tok string, id uuid.UUID, d time.Duration) bridgeDTO {
	f.t.Helper()
	var x bridgeDTO
	require.Eventually(f.t, func() bool {
		require.Equal(f.t, 200, c.call("GET", "/api/v1/bridge/transfers/"+id.String(), tok, nil, &x))
		return x.Status != "pending"
	}, d, 100*time.Millisecond, "bridge operation %s finishes", id)
	require.Contains(f.t, []string{"completed", "refunded"}, x.Status, "%+v", x)
	return x
}

// ledgerView is what the bridge accounts of both frames hold.
type ledgerView struct{ aliceLiquid, escrow, bobWrapped, feeWrapped int64 }

func (f *bridgeFrames) view() ledgerView {
	w := ledger.WrappedBucket(f.fa.ID)
	return ledgerView{
		aliceLiquid: bucketOf(f.t, f.a, f.alice, "liquid"),
		escrow:      bucketOf(f.t, f.a, ledger.BridgeEscrowAccount(f.fb.ID), "locked_bridge"),
		bobWrapped:  bucketOf(f.t, f.b, f.bob, w),
		feeWrapped:  bucketOf(f.t, f.b, ledger.AccountFeeCollector, w),
	}
}

// account checks the ledgers against the operations' outcomes: a completed
// send moved its amount into escrow and minted it (less the fee) once; a
// refunded one moved nothing; a completed redemption released its amount,
// a refunded one re-minted it.
func (f *bridgeFrames) account(start ledgerView, sends, redemptions map[uuid.UUID]int64, outcome map[uuid.UUID]bridgeDTO) {
	f.t.Helper()
	want := start
	for id, amount := range sends {
		x := outcome[id]
		if x.Status == "completed" {
			want.aliceLiquid -= amount
			want.escrow += amount
			want.bobWrapped += amount - x.FeeUnits
			want.feeWrapped += x.FeeUnits
		}
	}
	for id, amount := range redemptions {
		if outcome[id].Status == "completed" {
			want.aliceLiquid += amount
			want.escrow -= amount
			want.bobWrapped -= amount
		}
	}
	require.Equal(f.t, want, f.view(), "every operation fully applied or fully refunded, none doubled")
}

// TestBridgeSurvivesFrameOutages stops a frame's mainframe for real (a
// graceful Stop, its listener gone) instead of injecting client faults.
// B goes down while sends are being minted: each send ends minted once or
// unlocked with the sender whole, never both. A goes down during a
// redemption: B retries the release and completes it once A is back
// (within the redemption's window; past it B would re-mint). After each frame comes back both
// audits are at delta 0 and the reconciliation at difference 0.
func TestBridgeSurvivesFrameOutages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A's sends expire soon (the sends B never saw are unlocked while it
	// is down); B's redemptions outlast A's restart, so they must
	// complete.
	f, oa, ob := startFixedBridgeFrames(t, 15*time.Second, time.Minute)
	start := f.view()
	outcome := map[uuid.UUID]bridgeDTO{}

	// One send minted while both are up (the redemption below spends it).
	x0 := f.send(f.bob, 5*avt)
	outcome[x0.ID] = f.wait(f.ca, f.aliceT, x0.ID, "completed")
	sends := map[uuid.UUID]int64{x0.ID: 5 * avt}

	// B down at mint time: two sends accepted just before B stops (minted
	// or not by then), two more while it is down.
	for i := range int64(2) {
		x := f.send(f.bob, (i+1)*avt)
		sends[x.ID] = (i + 1) * avt
	}
	f.b.Stop(ctx)
	var whileDown []uuid.UUID
	for i := range int64(2) {
		x := f.send(f.bob, (i+3)*avt)
		sends[x.ID] = (i + 3) * avt
		whileDown = append(whileDown, x.ID)
	}
	for _, id := range whileDown {
		// Never delivered, expired: unlocked while B is still down.
		x := f.finish(f.ca, f.aliceT, id, time.Minute)
		require.Equal(t, "refunded", x.Status, "%+v", x)
		require.Contains(t, x.Reason, "unreachable")
	}
	f.restart(ob)
	for id := range sends {
		outcome[id] = f.finish(f.ca, f.aliceT, id, time.Minute)
		want := 0
		if outcome[id].Status == "completed" {
			want = 1
		}
		require.Equal(t, want, f.mints(id), "send %s: %+v", id, outcome[id])
		t.Logf("send of %d AVT: %s %s", sends[id]/avt, outcome[id].Status, outcome[id].Reason)
	}
	f.account(start, sends, nil, outcome)
	f.settled(time.Minute)

	// A down during a redemption: B retries the release until A is back.
	start = f.view()
	f.a.Stop(ctx)
	r := f.redeem(f.alice, avt)
	require.Equal(t, start.bobWrapped-avt, bucketOf(t, f.b, f.bob, ledger.WrappedBucket(f.fa.ID)), "burned at once")
	f.restart(oa)
	outcome[r.ID] = f.finish(f.cb, f.bobT, r.ID, time.Minute)
	require.Equal(t, "completed", outcome[r.ID].Status, "A was back within the window: %+v", outcome[r.ID])
	f.account(start, nil, map[uuid.UUID]int64{r.ID: avt}, outcome)
	f.settled(time.Minute)
}

// originProcess is frame A's mainframe in a child process.
type originProcess struct{ coordinator }

// startOrigin runs frame A's mainframe in a child process holding at the
// given calls, and waits until it serves.
func (f *bridgeFrames) startOrigin(o node.Options, crashAt, crashServing string) *originProcess {
	// The frame's EventStore consumer stays out of the killed processes
	// (as in the cross-registry crash test): a consumer killed in its
	// Kafka group makes the next one wait out the dead member's session.
	// A's events wait in its outbox and Kafka until A is back here.
	reg := o.Registry
	reg.Roles = []string{"registry", "teg", "worker"}
	return startFrameProcess(f.t, bridgeOriginSpec{
		Frame: o.Frame, Registry: reg, PostgresAdminURL: o.PostgresAdminURL, TemporalAddr: o.TemporalAddr,
		KafkaBrokers: o.KafkaBrokers, DataDir: o.DataDir, Window: o.BridgeSettings.Window,
		CrashAt: crashAt, CrashServing: crashServing,
	})
}

// startFrameProcess runs a frame's mainframe as described by spec in a
// child process and waits until it serves.
func startFrameProcess(t *testing.T, s bridgeOriginSpec) *originProcess {
	spec, err := json.Marshal(s)
	require.NoError(t, err)
	// A bounded -test.timeout: a child the parent failed to kill ends itself.
	cmd := exec.Command(os.Args[0], "-test.run=^TestBridgeOriginProcess$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), envBridgeOriginChild+"="+string(spec))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	c := &originProcess{coordinator{cmd: cmd, lines: make(chan string, 64)}}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() { c.kill(t) })
	if !c.await(childReady, 2*time.Minute) {
		c.kill(t)
		t.Fatalf("frame %s's process did not start\n%s", s.Frame.ID, stderr.String())
	}
	return c
}

// TestBridgeSurvivesOriginSIGKILL runs frame A's mainframe (API, TEG,
// bridge worker, participant) in a child process and kills it with
// SIGKILL in the middle of a bridge call at each step boundary: after the
// lock, before the mint is delivered; after B applied the mint, before A
// recorded it; and during a redemption, after B burned, before A
// released. Each time a new process (finally this test process) takes
// over the sagas. Every operation ends fully applied or fully refunded,
// nothing minted or released twice, both audits at delta 0 and the
// reconciliation at difference 0.
func TestBridgeSurvivesOriginSIGKILL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A window long enough that the sagas resume before it runs out:
	// each crash point is then reached, not skipped by an expiry.
	f, oa, _ := startFixedBridgeFrames(t, time.Minute, time.Minute)
	start := f.view()
	f.a.Stop(ctx)

	// 1. Locked, not yet delivered.
	first := f.startOrigin(oa, "apply", "")
	x := f.send(f.bob, 5*avt)
	require.True(t, first.await(childCrashAt, time.Minute), "A reached the mint delivery")
	first.kill(t)
	// 2. The next process resumes the send; B applies the mint, the
	// answer never reaches A's records.
	second := f.startOrigin(oa, "apply/after", "")
	require.True(t, second.await(childCrashAt, time.Minute), "A delivered the mint again")
	second.kill(t)
	require.Equal(t, 1, f.mints(x.ID), "B applied the mint")
	// 3. The next process completes the send; a redemption burns on B
	// and A dies receiving the release.
	third := f.startOrigin(oa, "", "apply")
	done := f.finish(f.ca, f.aliceT, x.ID, time.Minute)
	require.Equal(t, "completed", done.Status, "a mint B applied is never unlocked: %+v", done)
	r := f.redeem(f.alice, 2*avt)
	require.True(t, third.await(childCrashAt, time.Minute), "B delivered the release")
	third.kill(t)

	// A comes back in this process; B retries the release.
	f.restart(oa)
	outcome := map[uuid.UUID]bridgeDTO{x.ID: done}
	outcome[r.ID] = f.finish(f.cb, f.bobT, r.ID, 2*time.Minute)
	require.Equal(t, "completed", outcome[r.ID].Status, "A was back within the window: %+v", outcome[r.ID])
	require.Equal(t, 1, f.mints(x.ID), "minted exactly once")
	f.account(start, map[uuid.UUID]int64{x.ID: 5 * avt}, map[uuid.UUID]int64{r.ID: 2 * avt}, outcome)
	f.settled(time.Minute)
}
