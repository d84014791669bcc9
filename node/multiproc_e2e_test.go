package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/xfer"
)

// tcpProxy is the "one address" of a registry run as several processes: a
// TCP load balancer (TLS passes through untouched) that spreads new
// connections round-robin over its backends and skips a backend it cannot
// dial, as a health-checking load balancer would after a process died.
type tcpProxy struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	served   []atomic.Int64 // connections handed to each backend
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func startProxy(t testing.TB, backends ...string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln, backends: backends, served: make([]atomic.Int64, len(backends)), conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *tcpProxy) handle(c net.Conn) {
	start := p.next.Add(1)
	for i := range len(p.backends) {
		k := int((start + uint64(i)) % uint64(len(p.backends)))
		b, err := net.DialTimeout("tcp", p.backends[k], time.Second)
		if err != nil {
			continue
		}
		p.served[k].Add(1)
		if !p.track(c, b) {
			return
		}
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
		go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
		<-done // one side ended: end both
		_ = c.Close()
		_ = b.Close()
		<-done
		p.untrack(c, b)
		return
	}
	_ = c.Close() // no backend alive
}

func (p *tcpProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *tcpProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *tcpProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// envRegistryProcess carries a registryProcessSpec to the child process
// TestRegistryProcess turns into a second process of a registry.
const envRegistryProcess = "THEPROTOCOL_TEST_REGISTRY_PROCESS"

// registryProcessSpec is what the child needs to run another process of
// a registry already running in the test process.
type registryProcessSpec struct {
	Frame            config.Frame
	Registry         config.Registry
	PostgresAdminURL string
	TemporalAddr     string
	KafkaBrokers     []string
	DataDir          string
	XferSettings     config.XferSettings
}

// TestRegistryProcess is not a test of its own: it is the second process
// of the source registry of TestTwoProcessesOfOneRegistrySettleOnce, run
// as a child (the test binary re-executed) so that it can be killed for
// real. It skips unless that test started it.
func TestRegistryProcess(t *testing.T) {
	raw := os.Getenv(envRegistryProcess)
	if raw == "" {
		t.Skip("a process of TestTwoProcessesOfOneRegistrySettleOnce; runs only as its child process")
	}
	var spec registryProcessSpec
	require.NoError(t, json.Unmarshal([]byte(raw), &spec))
	_, err := node.Start(context.Background(), node.Options{
		Frame: spec.Frame, Registry: spec.Registry, PostgresAdminURL: spec.PostgresAdminURL,
		TemporalAddr: spec.TemporalAddr, KafkaBrokers: spec.KafkaBrokers, DataDir: spec.DataDir,
		XferSettings: spec.XferSettings, Log: quietLog,
	})
	require.NoError(t, err)
	fmt.Println(childReady)
	select {} // serves until the parent kills it
}

// startRegistryProcess runs spec in a child process and waits until it
// serves.
func startRegistryProcess(t *testing.T, spec registryProcessSpec) *coordinator {
	raw, err := json.Marshal(spec)
	require.NoError(t, err)
	// A bounded -test.timeout: a child the parent failed to kill ends itself.
	cmd := exec.Command(os.Args[0], "-test.run=^TestRegistryProcess$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), envRegistryProcess+"="+string(raw))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	c := &coordinator{cmd: cmd, lines: make(chan string, 64)}
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
		t.Fatalf("the second process did not start\n%s", stderr.String())
	}
	return c
}

// sender posts cross-registry transfers through the registry's one
// address the way a careful client does: every request on a new
// connection (so the balancer spreads them), and a request that got no
// answer (the process died under it), a 5xx or a 409 "still in progress"
// is retried with the same Idempotency-Key until it is acknowledged.
type sender struct {
	t      *testing.T
	base   string
	token  string
	to     string
	client *http.Client
}

func newSender(t *testing.T, base, token, to string) *sender {
	return &sender{t: t, base: base, token: token, to: to,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
}

// send returns the acknowledged (202) transfer for key.
func (s *sender) send(key string, amountUnits int64) xferDTO {
	body, err := json.Marshal(map[string]any{"to": s.to, "amount_units": amountUnits})
	require.NoError(s.t, err)
	deadline := time.Now().Add(4 * time.Minute)
	last := ""
	for {
		require.True(s.t, time.Now().Before(deadline), "transfer %s never acknowledged (last answer: %s)", key, last)
		req, err := http.NewRequest(http.MethodPost, s.base+"/api/v1/transfers", bytes.NewReader(body))
		require.NoError(s.t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Idempotency-Key", key)
		resp, err := s.client.Do(req)
		if err != nil {
			last = err.Error()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		raw, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, raw)
		switch {
		case rerr != nil, resp.StatusCode >= 500, resp.StatusCode == http.StatusConflict && !strings.Contains(string(raw), "idempotency_key_reused"):
			time.Sleep(100 * time.Millisecond)
			continue
		}
		require.Equal(s.t, http.StatusAccepted, resp.StatusCode, "%s", raw)
		var x xferDTO
		require.NoError(s.t, json.Unmarshal(raw, &x))
		return x
	}
}

// sendAll sends n transfers of amountUnits from workers goroutines, keys
// prefix-0 … prefix-(n−1), and returns them; after is called (once) when
// killAfter of them are acknowledged.
func (s *sender) sendAll(prefix string, n, workers int, amountUnits int64, killAfter int, after func()) []xferDTO {
	out := make([]xferDTO, n)
	var next, acked atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				out[i] = s.send(fmt.Sprintf("%s-%d", prefix, i), amountUnits)
				if int(acked.Add(1)) == killAfter && after != nil {
					once.Do(after)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// TestTwoProcessesOfOneRegistrySettleOnce runs the source registry of a
// cross-registry pair as two identical processes on the same databases
// (this test process and a child), behind one address: a TCP balancer
// for the API and one for the mTLS listener, which the target and the
// topology know as the registry's. Both processes run every background
// component: outbox relays, the frame's EventStore consumer, the
// settlement batcher and its recovery loop, the Temporal worker and its
// schedules, the peer-licence listener.
//
//  1. Recovery passes of two processes over the same orphaned transfers
//     (accepted, no workflow), batching them differently, resubmit each
//     transfer once between them.
//  2. Transfers posted through the one address, spread over both
//     processes, each settle exactly once.
//  3. The child is SIGKILLed in the middle of a run; the client retries
//     what got no answer with the same Idempotency-Key, the survivor takes
//     over the relays, the consumer's partitions and the sagas, and every
//     acknowledged transfer is credited once, the sender debited once.
//
// It ends with both registries consistent: transit legs matched, every
// outbox event of every role database in the EventStore once, the
// projections equal to the TEGs' balances, the audit at delta 0.
func TestTwoProcessesOfOneRegistrySettleOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newXferPair(t, nil)
	ports := freePorts(t, 5) // S1 API, S1 mTLS, S2 API, S2 mTLS, D mTLS
	api := startProxy(t, fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[2]))
	mtls := startProxy(t, fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[3]))
	lbURL := fmt.Sprintf("http://127.0.0.1:%d", api.port())

	// The frame knows the source registry at the balancers' ports; each
	// process listens on its own.
	p.srcReg.APIPort, p.srcReg.MTLSPort = api.port(), mtls.port()
	p.dstReg.MTLSPort = ports[4]
	p.frame.Registries = []config.Registry{p.srcReg, p.dstReg}
	xs := config.DefaultXferSettings()
	xs.RecoverEvery = 2 * time.Second
	s1, s2 := p.srcReg, p.srcReg
	s1.APIPort, s1.MTLSPort = ports[0], ports[1]
	s2.APIPort, s2.MTLSPort = ports[2], ports[3]
	p.srcOpts.Frame, p.srcOpts.Registry, p.srcOpts.XferSettings = p.frame, s1, xs
	p.dstOpts.Frame, p.dstOpts.Registry, p.dstOpts.EventStoreURL = p.frame, p.dstReg, lbURL

	var err error
	p.src, err = node.Start(ctx, p.srcOpts)
	require.NoError(t, err)
	t.Cleanup(func() { p.src.Stop(context.Background()) })
	p.startDst()
	child := startRegistryProcess(t, registryProcessSpec{
		Frame: p.frame, Registry: s2, PostgresAdminURL: p.srcOpts.PostgresAdminURL, TemporalAddr: p.srcOpts.TemporalAddr,
		KafkaBrokers: p.srcOpts.KafkaBrokers, DataDir: p.srcOpts.DataDir, XferSettings: xs,
	})
	p.c = httpClient{t, lbURL}
	p.setUpAccounts()
	start, _ := balance(t, p.src, p.alice)

	// 1. Two recovery passes, as two processes would run them, over the
	// same orphans, with different batch sizes (so different workflow
	// IDs): between them every orphan is resubmitted once.
	var orphans []uuid.UUID
	for i := range 12 {
		x, err := p.src.Ledger.BeginXfer(ctx, ledgerstore.XferRequest{From: p.alice, To: p.bob, Target: p.dstReg.ID,
			AmountUnits: avt, IdempotencyKey: fmt.Sprintf("orphan-%d", i)})
		require.NoError(t, err)
		orphans = append(orphans, x.ID)
	}
	other := &xfer.Batcher{Source: p.srcReg.ID, TaskQueue: p.srcReg.TaskQueue(), Temporal: p.src.Temporal, Store: p.src.Ledger,
		Log: quietLog, Opts: xfer.BatcherOptions{MaxBatch: 5}}
	defer other.Close()
	p.src.Xfer.Batcher.Configure(xfer.BatcherOptions{MaxBatch: 7})
	var resubmitted [2]int
	var wg sync.WaitGroup
	for i, b := range []*xfer.Batcher{p.src.Xfer.Batcher, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := b.Recover(ctx, 0)
			require.NoError(t, err)
			resubmitted[i] = n
		}()
	}
	wg.Wait()
	p.src.Xfer.Batcher.Configure(xfer.BatcherOptions{})
	require.Equal(t, len(orphans), resubmitted[0]+resubmitted[1], "each orphan resubmitted by one pass only (%v)", resubmitted)

	// 2. Both processes serve. XFER_MULTIPROC_TRANSFERS and
	// XFER_MULTIPROC_CLIENTS scale phases 2 and 3 up for a longer run
	// (the sender holds 1,000 AVT: at most ~900 transfers in phase 3).
	total3 := envInt("XFER_MULTIPROC_TRANSFERS", 160)
	clients := envInt("XFER_MULTIPROC_CLIENTS", 8)
	s := newSender(t, lbURL, p.aliceTok, p.bob)
	sent := s.sendAll("both", 60, clients, avt, 0, nil)
	require.Positive(t, api.served[0].Load(), "the first process took requests")
	require.Positive(t, api.served[1].Load(), "the second process took requests")

	// 3. The second process dies with transfers in every stage.
	var killedAt time.Time
	killed := s.sendAll("kill", total3, clients, avt, total3/3, func() { child.kill(t); killedAt = time.Now() })
	require.NotNil(t, child.cmd.ProcessState, "the child was killed mid-run")

	all := append(append([]uuid.UUID{}, orphans...), idsOf(sent)...)
	all = append(all, idsOf(killed)...)
	p.settledOnce(all, 4*time.Minute)
	t.Logf("every transfer committed %s after the kill", time.Since(killedAt).Round(time.Second))
	var fees, total int64
	require.NoError(t, p.src.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*), coalesce(sum(amount_units), 0)::bigint, coalesce(sum(fee_units), 0)::bigint FROM xfers WHERE status = 'committed'`).Scan(new(int), &total, &fees))
	require.Equal(t, int64(len(all))*avt, total, "every acknowledged transfer, and nothing else, committed")
	units, held := balance(t, p.src, p.alice)
	require.Equal(t, start-total, units, "the sender debited once per transfer")
	require.Zero(t, held)
	bob, _ := balance(t, p.dst, p.bob)
	require.Equal(t, total-fees, bob, "the receiver credited once per transfer")
	out, _ := balance(t, p.src, ledgerstore.TransitAccount(p.dstReg.ID))
	in, _ := balance(t, p.dst, ledgerstore.TransitAccount(p.srcReg.ID))
	require.Equal(t, total, out)
	require.Equal(t, -total, in)

	// The dead member's partitions move after its session timeout.
	p.checkEventStoreWithin(3 * time.Minute)
	p.everyOutboxIngested([]*node.Node{p.src}, []db.Role{db.RoleRegistry, db.RoleEventStore}, time.Minute)
	t.Logf("every event in the EventStore %s after the kill", time.Since(killedAt).Round(time.Second))
}

func idsOf(xs []xferDTO) []uuid.UUID {
	out := make([]uuid.UUID, len(xs))
	for i, x := range xs {
		out[i] = x.ID
	}
	return out
}

// settledOnce waits until every transfer in ids is committed on the
// source, then checks each was credited exactly once on the target.
func (p *xferPair) settledOnce(ids []uuid.UUID, within time.Duration) {
	t, ctx := p.t, context.Background()
	keys := make([]string, len(ids))
	credit := make([]string, len(ids))
	for i, id := range ids {
		keys[i], credit[i] = id.String(), "#xfer:"+id.String()
	}
	ok := assertEventually(func() bool {
		var open int
		require.NoError(t, p.src.Pools[db.RoleTEG].QueryRow(ctx,
			`SELECT count(*) FROM xfers WHERE id = ANY($1::text[]::uuid[]) AND status <> 'committed'`, keys).Scan(&open))
		return open == 0
	}, within)
	require.True(t, ok, "every acknowledged transfer committed within %s", within)
	var n, credits, distinct int
	require.NoError(t, p.src.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*) FROM xfers WHERE id = ANY($1::text[]::uuid[])`, keys).Scan(&n))
	require.Equal(t, len(ids), n)
	require.NoError(t, p.dst.Pools[db.RoleTEG].QueryRow(ctx,
		`SELECT count(*), count(DISTINCT client_key) FROM transfers WHERE client_key = ANY($1)`, credit).Scan(&credits, &distinct))
	require.Equal(t, len(ids), distinct, "every transfer credited")
	require.Equal(t, len(ids), credits, "no transfer credited twice")
}

// everyOutboxIngested waits until every event in the outboxes of the
// given role databases of nodes is in the frame's EventStore (at most once
// each: the event log's key is unique per registry).
func (p *xferPair) everyOutboxIngested(nodes []*node.Node, roles []db.Role, within time.Duration) {
	t, ctx := p.t, context.Background()
	es := p.src.Pools[db.RoleEventStore]
	for _, n := range nodes {
		reg := p.srcReg.ID
		if n == p.dst {
			reg = p.dstReg.ID
		}
		for _, role := range roles {
			var keys []string
			require.NoError(t, n.Pools[role].QueryRow(ctx, `SELECT coalesce(array_agg(idempotency_key), '{}') FROM outbox`).Scan(&keys))
			ok := assertEventually(func() bool {
				var ingested int
				require.NoError(t, es.QueryRow(ctx, `SELECT count(*) FROM events WHERE registry = $1 AND idempotency_key = ANY($2)`, reg, keys).Scan(&ingested))
				return ingested == len(keys)
			}, within)
			require.True(t, ok, "every %s event of %s reached the EventStore", role, reg)
		}
	}
}

// TestPeerRemovalReachesEveryProcess: a peer removed by another process
// of the registry (its row changed straight in the database, as that
// process's store does, with the notification) is refused by this one
// from its next call, without waiting for the periodic re-read: its calls
// to our participant API are refused and payments to it find no route.
func TestPeerRemovalReachesEveryProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startXferPair(t)
	x := p.send(p.bob, avt)
	p.waitStatus(x.ID, "committed", 60*time.Second)

	td, err := identity.FrameTrustDomain(p.frame)
	require.NoError(t, err)
	id, err := identity.TEGID(td, p.dstReg.ID)
	require.NoError(t, err)
	removed, err := registrystore.NewPeers(p.src.Pools[db.RoleRegistry]).Remove(ctx, id.String(), time.Now())
	require.NoError(t, err)
	require.True(t, removed)
	// Well inside the 30 s re-read: only the notification gets it there.
	require.Eventually(t, func() bool {
		_, err := p.dst.Xfer.Client.Decisions(ctx, p.srcReg.ID, []uuid.UUID{uuid.New()})
		return err != nil && strings.Contains(err.Error(), string(apperr.PeerNotAdmitted))
	}, 20*time.Second, 50*time.Millisecond, "the removal made elsewhere reaches this process")
	p.assertCutOff()
}
