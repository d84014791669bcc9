package node_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/bridge"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/xfer"
)

// BenchmarkBridgeTransfers measures cross-frame bridge sends between two
// frames' mainframes (own trust domains, databases and EventStores,
// federated mTLS, the Temporal dev server), accept → minted: the accept is
// what POST /bridge/transfers does after authentication (lock + record,
// workflow start), minted is the origin recording that the target minted
// (its row completed, so an upper bound). In the same run, for
// comparison, the cross-registry figure of BenchmarkCrossRegistryTransfers
// (batched, under load). Sub-benchmarks:
//
//	xregistry/batched  cross-registry transfers, XFER_BENCH_CLIENTS clients
//	bridge/idle        one bridge send at a time (min(b.N, 100)): lone latency
//	bridge/load        b.N bridge sends from XFER_BENCH_CLIENTS clients
//
// Each reports transfers/s and p50/p99 in ms (make bench-bridge).
func BenchmarkBridgeTransfers(b *testing.B) {
	ctx := context.Background()
	bp := startBenchPair(b)
	clients := envInt("XFER_BENCH_CLIENTS", 64)
	runID := uuid.NewString()[:8]
	a, z, senders, receivers := startBenchFrames(b)

	b.Run("xregistry/batched", func(b *testing.B) {
		bp.quiesce(b)
		bp.src.Xfer.Batcher.Configure(xfer.BatcherOptions{MaxInFlight: envInt("XFER_BENCH_IN_FLIGHT", 4)})
		defer bp.src.Xfer.Batcher.Configure(xfer.BatcherOptions{})
		ids := make([]uuid.UUID, b.N)
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= b.N {
						return
					}
					ids[i] = bp.begin(b, i, fmt.Sprintf("bx-%d-%d-%s", b.N, i, runID)).ID
				}
			}()
		}
		wg.Wait()
		bp.waitCommitted(b, ids)
		report(b, b.N, time.Since(start), bp.acceptToCommit(b, ids))
	})

	send := func(b *testing.B, i int, key string) uuid.UUID {
		t, err := a.Bridge.Service.Start(ctx, bridge.Request{Kind: ledgerstore.BridgeSend, Frame: z.Bridge.Service.Frame,
			From: senders[i%len(senders)], To: receivers[(i*7)%len(receivers)], AmountUnits: 1_000_000, Key: key})
		require.NoError(b, err)
		return t.ID
	}
	b.Run("bridge/idle", func(b *testing.B) {
		bp.quiesce(b) // the cross-registry run's events are applied first
		n := min(b.N, 100)
		ids := make([]uuid.UUID, n)
		start := time.Now()
		for i := range n {
			ids[i] = send(b, i, fmt.Sprintf("bi-%d-%d-%s", b.N, i, runID))
			waitBridge(b, a, ids[i:i+1])
		}
		report(b, n, time.Since(start), bridgeLatencies(b, a, ids))
	})
	b.Run("bridge/load", func(b *testing.B) {
		ids := make([]uuid.UUID, b.N)
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= b.N {
						return
					}
					ids[i] = send(b, i, fmt.Sprintf("bl-%d-%d-%s", b.N, i, runID))
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "accepts/s")
		waitBridge(b, a, ids)
		report(b, b.N, time.Since(start), bridgeLatencies(b, a, ids))
	})
}

// startBenchFrames starts two frames' mainframes, federated, with
// XFER_BENCH_AGENTS funded senders on the first and receivers on the
// second (ledger accounts only: the bench measures the bridge).
func startBenchFrames(b *testing.B) (*node.Node, *node.Node, []string, []string) {
	ctx := context.Background()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	start := func(id, currency string) *node.Node {
		reg := config.Registry{ID: id + "-main" + suffix, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
		fr := config.Frame{ID: id + suffix, TrustDomain: id + suffix + ".theprotocol.test", Currency: currency, Genesis: currency == "AVT",
			GenesisSupplyUnits: 1_000_000_000 * avt, Registries: []config.Registry{reg}}
		n, err := node.Start(ctx, node.Options{Frame: fr, Registry: reg, PostgresAdminURL: testenv.PostgresURL(b),
			TemporalAddr: testenv.TemporalAddr(b), KafkaBrokers: testenv.KafkaBrokers(b), DataDir: b.TempDir(), Log: quietLog})
		require.NoError(b, err)
		b.Cleanup(func() { n.Stop(context.Background()) })
		b.Cleanup(func() { deleteSchedules(n, reg.ID) })
		return n
	}
	a, z := start("xa", "AVT"), start("xz", "ZVT")
	require.NoError(b, node.ConnectFrames(ctx, a, z))
	var senders, receivers []string
	for range envInt("XFER_BENCH_AGENTS", 1024) {
		s := "did:theprotocol:" + uuid.NewString()
		_, _, err := a.Ledger.OpenAccount(ctx, s, ledger.KindAgent)
		require.NoError(b, err)
		_, err = a.Ledger.Grant(ctx, ledgerstore.SupplyRequest{To: s, AmountUnits: 100_000 * avt, Reason: "bench", Actor: "admin:bench", IdempotencyKey: "g-" + s})
		require.NoError(b, err)
		senders = append(senders, s)
		r := "did:theprotocol:" + uuid.NewString()
		_, _, err = z.Ledger.OpenAccount(ctx, r, ledger.KindAgent)
		require.NoError(b, err)
		receivers = append(receivers, r)
	}
	return a, z, senders, receivers
}

// waitBridge polls the origin's rows until every id completed.
func waitBridge(b *testing.B, n *node.Node, ids []uuid.UUID) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = id.String()
	}
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var open, refunded int
		require.NoError(b, n.Pools[db.RoleTEG].QueryRow(context.Background(),
			`SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'refunded') FROM bridge_transfers WHERE id = ANY($1::text[]::uuid[])`, keys).Scan(&open, &refunded))
		require.Zero(b, refunded, "bridge sends refunded under load")
		if open == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("bridge sends not completed within 10 minutes")
}

func bridgeLatencies(b *testing.B, n *node.Node, ids []uuid.UUID) []time.Duration {
	rows, err := n.Pools[db.RoleTEG].Query(context.Background(), `SELECT updated_at - created_at FROM bridge_transfers WHERE id = ANY($1)`, ids)
	require.NoError(b, err)
	defer rows.Close()
	var out []time.Duration
	for rows.Next() {
		var d time.Duration
		require.NoError(b, rows.Scan(&d))
		out = append(out, d)
	}
	require.NoError(b, rows.Err())
	return out
}
