package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/xfer"
)

// BenchmarkCrossRegistryTransfers measures cross-registry transfers between
// two registries of one frame (real Postgres, the Temporal dev server,
// mTLS between the TEGs), accept → committed: the accept is what POST
// /transfers does after authentication (hold + pending row, then the
// batcher), committed is the coordinator's row reaching committed after the
// target credited the receiver. Sub-benchmarks, in one run:
//
//	intra          intra-registry transfers through the group committer (the
//	               comparison figure), XFER_BENCH_CLIENTS concurrent clients
//	cross/idle     one transfer at a time (min(b.N, 200)): lone latency
//	cross/batched  b.N transfers from XFER_BENCH_CLIENTS concurrent clients,
//	               adaptive batching on (the default)
//	cross/unbatched  the same with one workflow per transfer (min(b.N, 500))
//
// Each reports transfers/s and p50/p99 latency in ms (the cross modes also
// transfers/workflow). Run e.g.
//
//	bin/theprotocol testenv -- go test ./node -run '^$' -bench CrossRegistryTransfers -benchtime 3000x
func BenchmarkCrossRegistryTransfers(b *testing.B) {
	ctx := context.Background()
	bp := startBenchPair(b)
	clients := envInt("XFER_BENCH_CLIENTS", 64)
	runID := uuid.NewString()[:8] // keys stay unique across the framework's b.N rounds

	b.Run("intra", func(b *testing.B) {
		gc := bp.src.Ledger.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
		defer gc.Close()
		lat := make([]time.Duration, b.N)
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for w := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= b.N {
						return
					}
					t0 := time.Now()
					from, to := bp.senders[(w+i)%len(bp.senders)], bp.senders[(w+i+1)%len(bp.senders)]
					_, err := gc.Transfer(ctx, ledgerstore.TransferRequest{From: from, To: to, AmountUnits: 1_000_000, IdempotencyKey: fmt.Sprintf("intra-%d-%s", i, uuid.NewString()[:8])})
					require.NoError(b, err)
					lat[i] = time.Since(t0)
				}
			}()
		}
		wg.Wait()
		report(b, b.N, time.Since(start), lat)
	})

	b.Run("cross/idle", func(b *testing.B) {
		bp.quiesce(b)
		n := min(b.N, 200)
		lat := make([]time.Duration, n)
		start := time.Now()
		for i := range n {
			t0 := time.Now()
			x := bp.begin(b, i, fmt.Sprintf("idle-%d-%d-%s", b.N, i, runID))
			bp.waitCommitted(b, []uuid.UUID{x.ID})
			lat[i] = time.Since(t0)
		}
		report(b, n, time.Since(start), lat)
	})

	for _, mode := range []struct {
		name string
		opts xfer.BatcherOptions
	}{
		{"cross/batched", xfer.BatcherOptions{MaxInFlight: envInt("XFER_BENCH_IN_FLIGHT", 4)}},
		{"cross/unbatched", xfer.BatcherOptions{MaxBatch: 1}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			bp.quiesce(b)
			bp.src.Xfer.Batcher.Configure(mode.opts)
			defer bp.src.Xfer.Batcher.Configure(xfer.BatcherOptions{})
			n := b.N
			if mode.opts.MaxBatch == 1 {
				n = min(n, 500) // ~15 workflows/s: bounded so one run stays short
			}
			ids := make([]uuid.UUID, n)
			var next atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= n {
							return
						}
						ids[i] = bp.begin(b, i, fmt.Sprintf("%s-%d-%d-%s", mode.name[6:], b.N, i, runID)).ID
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "accepts/s")
			bp.waitCommitted(b, ids)
			elapsed := time.Since(start)
			report(b, n, elapsed, bp.acceptToCommit(b, ids))
			// How well arrivals shared workflows: a figure, not a check
			// (it depends on timing; the e2e test asserts batching itself
			// deterministically).
			var wfs int
			require.NoError(b, bp.src.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(DISTINCT workflow_id) FROM xfers WHERE id = ANY($1)`, ids).Scan(&wfs))
			b.ReportMetric(float64(n)/float64(max(wfs, 1)), "transfers/workflow")
		})
	}
}

type benchPair struct {
	src, dst  *node.Node
	srcID     string
	dstID     string
	senders   []string
	receivers []string
}

func startBenchPair(b *testing.B) *benchPair {
	ctx := context.Background()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	srcReg := config.Registry{ID: "bs" + suffix, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
	dstReg := config.Registry{ID: "bd" + suffix, Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace}
	frame := config.Frame{ID: "fb" + suffix, TrustDomain: "fb" + suffix + ".theprotocol.test", Currency: "AVT", Genesis: true,
		GenesisSupplyUnits: 1_000_000_000 * avt, Registries: []config.Registry{srcReg, dstReg}}
	dir := b.TempDir()
	bp := &benchPair{srcID: srcReg.ID, dstID: dstReg.ID}
	var err error
	bp.src, err = node.Start(ctx, node.Options{Frame: frame, Registry: srcReg, PostgresAdminURL: testenv.PostgresURL(b),
		TemporalAddr: testenv.TemporalAddr(b), KafkaBrokers: testenv.KafkaBrokers(b), DataDir: dir, Log: quietLog})
	require.NoError(b, err)
	b.Cleanup(func() { bp.src.Stop(context.Background()) })
	bp.dst, err = node.Start(ctx, node.Options{Frame: frame, Registry: dstReg, PostgresAdminURL: testenv.PostgresURL(b),
		TemporalAddr: testenv.TemporalAddr(b), KafkaBrokers: testenv.KafkaBrokers(b), DataDir: dir, EventStoreURL: bp.src.URL(), Log: quietLog})
	require.NoError(b, err)
	b.Cleanup(func() { bp.dst.Stop(context.Background()) })
	b.Cleanup(func() {
		for _, reg := range []string{srcReg.ID, dstReg.ID} {
			deleteSchedules(bp.dst, reg)
			_ = bp.dst.Temporal.ScheduleClient().GetHandle(context.Background(), "xfer-prepare-sweep-"+reg).Delete(context.Background())
		}
	})
	require.NoError(b, bp.src.ConnectPeer(ctx, dstReg.ID, bp.dst.MTLSURL()))
	require.NoError(b, bp.dst.ConnectPeer(ctx, srcReg.ID, bp.src.MTLSURL()))
	// Many senders and receivers (XFER_BENCH_AGENTS each, default 1024): a
	// sender's holds and decisions serialise on its balance row, as they
	// must, so few senders measure that row lock rather than the system.
	for range envInt("XFER_BENCH_AGENTS", 1024) {
		s := "did:theprotocol:" + uuid.NewString()
		_, _, err := bp.src.Ledger.OpenAccount(ctx, s, ledger.KindAgent)
		require.NoError(b, err)
		_, err = bp.src.Ledger.Grant(ctx, ledgerstore.SupplyRequest{To: s, AmountUnits: 100_000 * avt, Reason: "bench", Actor: "admin:bench", IdempotencyKey: "g-" + s})
		require.NoError(b, err)
		bp.senders = append(bp.senders, s)
		r := "did:theprotocol:" + uuid.NewString()
		_, _, err = bp.dst.Ledger.OpenAccount(ctx, r, ledger.KindAgent)
		require.NoError(b, err)
		bp.receivers = append(bp.receivers, r)
	}
	return bp
}

func (bp *benchPair) begin(b *testing.B, i int, key string) ledgerstore.Xfer {
	x, err := bp.src.Payments.Forward(context.Background(), ledgerstore.XferRequest{
		From: bp.senders[i%len(bp.senders)], To: bp.receivers[(i*7)%len(bp.receivers)], Target: bp.dstID,
		AmountUnits: 1_000_000, IdempotencyKey: key,
	})
	require.NoError(b, err)
	return x
}

// quiesce waits until the previous sub-benchmark's events are published by
// both TEGs' relays and applied by the EventStore, so each sub-benchmark
// measures its own load rather than the tail of the one before.
func (bp *benchPair) quiesce(b *testing.B) {
	ctx := context.Background()
	es := bp.src.Pools[db.RoleEventStore]
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		done := true
		for reg, n := range map[string]*node.Node{bp.srcID: bp.src, bp.dstID: bp.dst} {
			var last int64
			require.NoError(b, n.Pools[db.RoleTEG].QueryRow(ctx, `SELECT CASE WHEN EXISTS (SELECT 1 FROM outbox_queue) THEN -1 ELSE next_seq - 1 END FROM outbox_relay_state`).Scan(&last))
			var hwm int64
			if err := es.QueryRow(ctx, `SELECT hwm FROM source_progress WHERE registry = $1 AND source = 'teg'`, reg).Scan(&hwm); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				require.NoError(b, err)
			}
			if last < 0 || hwm < last {
				done = false
			}
		}
		if done {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("the relays and the EventStore did not catch up within 5 minutes")
}

// waitCommitted polls the coordinator's rows until every id is committed.
func (bp *benchPair) waitCommitted(b *testing.B, ids []uuid.UUID) {
	pool := bp.src.Pools[db.RoleTEG]
	// Latencies come from the rows' own timestamps, so the poll only ends
	// the wall clock: every 50 ms, with the ids as text (a []uuid.UUID
	// parameter goes through pgx's slow driver.Valuer path, and polling
	// thousands of them every millisecond took a fifth of the process's
	// CPU away from the system under test).
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = id.String()
	}
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var open int
		require.NoError(b, pool.QueryRow(context.Background(), `SELECT count(*) FROM xfers WHERE id = ANY($1::text[]::uuid[]) AND status <> 'committed'`, keys).Scan(&open))
		if open == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("transfers not committed within 10 minutes")
}

// acceptToCommit is each transfer's committed_at − accepted_at as the
// coordinator recorded them.
func (bp *benchPair) acceptToCommit(b *testing.B, ids []uuid.UUID) []time.Duration {
	rows, err := bp.src.Pools[db.RoleTEG].Query(context.Background(), `SELECT updated_at - created_at FROM xfers WHERE id = ANY($1)`, ids)
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

func report(b *testing.B, n int, elapsed time.Duration, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "transfers/s")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(0, "ns/op")
}
