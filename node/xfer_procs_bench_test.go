package node_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// BenchmarkCrossRegistryProcesses is the batched cross-registry workload
// of BenchmarkCrossRegistryTransfers with each of the two registries run
// as one process (procs=1) and as two identical processes on the same
// databases (procs=2), in one run. A registry's processes sit behind one
// mTLS address (a TCP balancer in this process, also in front of the
// single process so both variants pay for it); clients are spread over the
// source's processes, as a load balancer in front of its API would. All
// processes share this process and the machine's cores: the figure shows
// what a second process costs or gains on the same hardware, not scaling
// across machines. Each variant starts on a frame of its own after the
// previous one stopped. Run e.g.
//
//	bin/theprotocol testenv -- go test ./node -run '^$' -bench CrossRegistryProcesses -benchtime 2000x
func BenchmarkCrossRegistryProcesses(b *testing.B) {
	clients := envInt("XFER_BENCH_CLIENTS", 64)
	for _, procs := range []int{1, 2} {
		g := startProcGroups(b, procs)
		b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) {
			ctx := context.Background()
			n := b.N
			run := uuid.NewString()[:8] // -count repeats this function: fresh keys each time
			ids := make([]uuid.UUID, n)
			var next atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					src := g.src[c%len(g.src)] // the balancer's share of this client
					for {
						i := int(next.Add(1)) - 1
						if i >= n {
							return
						}
						x, err := src.Payments.Forward(ctx, ledgerstore.XferRequest{
							From: g.senders[i%len(g.senders)], To: g.receivers[(i*7)%len(g.receivers)], Target: g.dstID,
							AmountUnits: 1_000_000, IdempotencyKey: fmt.Sprintf("procs-%d-%d-%s", b.N, i, run),
						})
						require.NoError(b, err)
						ids[i] = x.ID
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "accepts/s")
			bp := &benchPair{src: g.src[0]}
			bp.waitCommitted(b, ids)
			report(b, n, time.Since(start), bp.acceptToCommit(b, ids))
		})
		g.stop()
	}
}

// procGroups is a frame of two registries, each run as procs processes.
type procGroups struct {
	src, dst           []*node.Node
	dstID              string
	senders, receivers []string
	stops              []func()
}

func (g *procGroups) stop() {
	for i := len(g.stops) - 1; i >= 0; i-- {
		g.stops[i]()
	}
	g.stops = nil
}

func startProcGroups(b *testing.B, procs int) *procGroups {
	ctx := context.Background()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	ports := freePortsB(b, 2*procs)
	backends := func(ps []int) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = fmt.Sprintf("127.0.0.1:%d", p)
		}
		return out
	}
	srcLB := startProxy(b, backends(ports[:procs])...)
	dstLB := startProxy(b, backends(ports[procs:])...)
	srcReg := config.Registry{ID: "ps" + suffix, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"},
		Namespace: testenv.TestNamespace, MTLSPort: srcLB.port()}
	dstReg := config.Registry{ID: "pd" + suffix, Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace,
		MTLSPort: dstLB.port()}
	frame := config.Frame{ID: "fp" + suffix, TrustDomain: "fp" + suffix + ".theprotocol.test", Currency: "AVT", Genesis: true,
		GenesisSupplyUnits: 1_000_000_000 * avt, Registries: []config.Registry{srcReg, dstReg}}
	dir := b.TempDir()
	g := &procGroups{dstID: dstReg.ID}
	startOne := func(reg config.Registry, mtlsPort int, esURL string) *node.Node {
		reg.MTLSPort = mtlsPort
		n, err := node.Start(ctx, node.Options{Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(b),
			TemporalAddr: testenv.TemporalAddr(b), KafkaBrokers: testenv.KafkaBrokers(b), DataDir: dir, EventStoreURL: esURL, Log: quietLog})
		require.NoError(b, err)
		g.stops = append(g.stops, func() { n.Stop(context.Background()) })
		return n
	}
	for i := range procs {
		g.src = append(g.src, startOne(srcReg, ports[i], ""))
	}
	for i := range procs {
		g.dst = append(g.dst, startOne(dstReg, ports[procs+i], g.src[0].URL()))
	}
	g.stops = append(g.stops, func() {
		for _, reg := range []string{srcReg.ID, dstReg.ID} {
			deleteSchedules(g.src[0], reg)
			_ = g.src[0].Temporal.ScheduleClient().GetHandle(context.Background(), "xfer-prepare-sweep-"+reg).Delete(context.Background())
		}
	})
	for range envInt("XFER_BENCH_AGENTS", 256) {
		s := "did:theprotocol:" + uuid.NewString()
		_, _, err := g.src[0].Ledger.OpenAccount(ctx, s, ledger.KindAgent)
		require.NoError(b, err)
		_, err = g.src[0].Ledger.Grant(ctx, ledgerstore.SupplyRequest{To: s, AmountUnits: 100_000 * avt, Reason: "bench", Actor: "admin:bench", IdempotencyKey: "g-" + s})
		require.NoError(b, err)
		g.senders = append(g.senders, s)
		r := "did:theprotocol:" + uuid.NewString()
		_, _, err = g.dst[0].Ledger.OpenAccount(ctx, r, ledger.KindAgent)
		require.NoError(b, err)
		g.receivers = append(g.receivers, r)
	}
	// Every process routes to the peer through its one address.
	for _, n := range g.src {
		require.Eventually(b, func() bool { _, ok := n.Xfer.Peers.Get(dstReg.ID); return ok }, time.Minute, 50*time.Millisecond)
	}
	return g
}

// freePortsB is freePorts for benchmarks.
func freePortsB(b *testing.B, n int) []int {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(b, err)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		defer ln.Close()
	}
	return ports
}
