package ledgerstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/gctune"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// Benchmarks of durable intra-registry transfers through the store
// (fsync and synchronous_commit on, as in production):
//
//	go test ./db/ledgerstore -run '^$' -bench Transfers -benchtime 20000x
//
// Each reports transfers/s and p50/p99 latency per transfer. Accounts are
// spread over benchAccounts agents; amounts are small so nearly every
// transfer succeeds.

const benchAccounts = 1024

type benchLedger struct {
	store *ledgerstore.Store
	pool  *pgxpool.Pool
	ids   []string
}

// benchSetup opens and funds the accounts. Call it on the top-level
// benchmark: the database lives until that benchmark ends, and the
// sub-benchmarks (run several times with growing b.N) share it.
func benchSetup(b *testing.B) *benchLedger {
	var benchL *benchLedger
	func() {
		tdb := testenv.NewDB(b, db.RoleTEG)
		pool, err := db.Open(context.Background(), tdb.DSN, db.PoolOptions{MaxConns: 48, ApplicationName: "bench"})
		require.NoError(b, err)
		s := ledgerstore.New(pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true})
		ctx := context.Background()
		_, err = s.Genesis(ctx, 1_000_000_000*avt)
		require.NoError(b, err)
		l := &benchLedger{store: s, pool: pool, ids: make([]string, benchAccounts)}
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < benchAccounts; i += 16 {
					id := "did:theprotocol:" + uuid.New().String()
					_, _, err := s.OpenAccount(ctx, id, ledger.KindAgent)
					if err == nil {
						_, err = s.Grant(ctx, ledgerstore.SupplyRequest{To: id, AmountUnits: 100_000 * avt, Reason: "bench", Actor: "admin:bench", IdempotencyKey: fmt.Sprintf("fund-%d", i)})
					}
					if err != nil {
						panic(err)
					}
					l.ids[i] = id
				}
			}()
		}
		wg.Wait()
		benchL = l
	}()
	return benchL
}

// runTransfers drives b.N transfers from submitters goroutines through fn
// and reports throughput and latency.
func runTransfers(b *testing.B, l *benchLedger, submitters int, fn func(context.Context, ledgerstore.TransferRequest) (ledgerstore.Transfer, error)) {
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, submitters)
	var failed atomic.Int64
	run := uuid.NewString()[:8]
	stale0, fallbacks0 := counter("ledger_transfer_batches_stale_total"), counter("ledger_group_commit_fallbacks_total")
	b.ResetTimer()
	cpu := testenv.StartCPUMeter(l.pool)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				from := rng.IntN(len(l.ids))
				to := (from + 1 + rng.IntN(len(l.ids)-1)) % len(l.ids)
				t0 := time.Now()
				_, err := fn(ctx, ledgerstore.TransferRequest{
					From: l.ids[from], To: l.ids[to], AmountUnits: 1000 + int64(rng.IntN(1000)),
					IdempotencyKey: fmt.Sprintf("b-%s-%d", run, i),
				})
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil && failed.Add(1) == 1 {
					b.Logf("first failure: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatency(b, elapsed, slices.Concat(lat...))
	cpu.Report(b, b.N)
	b.ReportMetric(counter("ledger_transfer_batches_stale_total")-stale0, "stale_batches")
	b.ReportMetric(counter("ledger_group_commit_fallbacks_total")-fallbacks0, "fallback_batches")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d transfers failed", f)
	}
}

// counter reads one of the package's Prometheus counters by name.
func counter(name string) float64 {
	reg := prometheus.NewRegistry()
	for _, c := range ledgerstore.Collectors() {
		if reg.Register(c) != nil {
			return -1
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

func reportLatency(b *testing.B, elapsed time.Duration, all []time.Duration) {
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "transfers/s")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkTransfers/groupcommit: 1,024 submitters through one
// GroupCommitter (batches ≤ 256, 2 workers). /direct: one transaction per
// transfer (Store.Transfer) from 32 submitters (the pool's size; more only
// queue for connections).
func BenchmarkTransfers(b *testing.B) {
	defer gctune.Tune(nil)() // as a node runs
	b.Logf("GOMAXPROCS=%d", runtime.GOMAXPROCS(0))
	l := benchSetup(b)
	b.Run("groupcommit", func(b *testing.B) {
		// LEDGER_BENCH_WORKERS / LEDGER_BENCH_BATCH override the defaults
		// for tuning runs.
		o := ledgerstore.GroupCommitOptions{Workers: envInt("LEDGER_BENCH_WORKERS"), MaxBatch: envInt("LEDGER_BENCH_BATCH")}
		gc := l.store.NewGroupCommitter(o)
		defer gc.Close()
		runTransfers(b, l, 1024, gc.Transfer)
	})
	b.Run("direct", func(b *testing.B) {
		runTransfers(b, l, 32, l.store.Transfer)
	})
}
