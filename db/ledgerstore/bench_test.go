package ledgerstore_test

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
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
	stale0, fallbacks0 := counter(b, "ledger_transfer_batches_stale_total"), counter(b, "ledger_group_commit_fallbacks_total")
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
	b.ReportMetric(counter(b, "ledger_transfer_batches_stale_total")-stale0, "stale_batches")
	b.ReportMetric(counter(b, "ledger_group_commit_fallbacks_total")-fallbacks0, "fallback_batches")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d transfers failed", f)
	}
}

// counter reads one of the package's Prometheus counters by name. A counter
// that cannot be read fails the benchmark: a sentinel value would turn into
// a plausible-looking delta (a stale count of 0) in the report.
func counter(b testing.TB, name string) float64 {
	b.Helper()
	reg := prometheus.NewRegistry()
	for _, c := range ledgerstore.Collectors() {
		if err := reg.Register(c); err != nil {
			b.Fatalf("register ledgerstore collectors: %v", err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatalf("gather ledgerstore metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		if len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetCounter() == nil {
			b.Fatalf("metric %s is not a single unlabelled counter", name)
		}
		return mf.GetMetric()[0].GetCounter().GetValue()
	}
	b.Fatalf("metric %s is not exported by ledgerstore.Collectors", name)
	return 0
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
		defer checkpointWhileRunning(b, l)()
		runTransfers(b, l, 1024, gc.Transfer)
	})
	b.Run("direct", func(b *testing.B) {
		runTransfers(b, l, 32, l.store.Transfer)
	})
}

// checkpointWhileRunning writes balance checkpoints every
// LEDGER_BENCH_CHECKPOINT_EVERY (e.g. 100ms, far more often than the
// minute a node uses) while the benchmark runs, to measure what they cost
// the transfers; unset, none. The returned func stops them and reports how
// many were written.
func checkpointWhileRunning(b *testing.B, l *benchLedger) func() {
	every, _ := time.ParseDuration(os.Getenv("LEDGER_BENCH_CHECKPOINT_EVERY"))
	if every <= 0 {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				done <- n
				return
			case <-t.C:
				if _, err := l.store.WriteCheckpoint(context.Background()); err != nil {
					b.Errorf("checkpoint: %v", err)
				} else {
					n++
				}
			}
		}
	}()
	return func() {
		close(stop)
		b.ReportMetric(float64(<-done), "checkpoints")
	}
}

// BenchmarkTransferFloor is not a ledger: it measures, in the same kind
// of cluster and with the same submitters as BenchmarkTransfers, how fast
// this machine is for far less work per transfer, so that a figure of the
// real store can be read against what the hardware allows at that moment.
// Per batch of ≤ 256 (two workers, as the GroupCommitter) one transaction:
// one netted UPDATE of the balances (sender debits, receiver credits, the
// fee account's credit summed; a CHECK keeps them ≥ 0) and one INSERT of a
// row per transfer. No balance read, no per-transfer decision, no
// idempotency lookup, no velocity count, no outbox event.
//
//   - narrow: the row is an event of five columns with a time-ordered
//     primary key and no other index — the
//     "group commit, netted" probe measured when the store was designed;
//
//   - transfer_rows: the row is a real transfers row (same columns, CHECKs
//     and five indexes: idempotency key, velocity pair, two history
//     indexes), with an Idempotency-Key and a request hash as the API
//     writes them;
//
//   - transfer_rows_no_velocity: the same without the velocity index
//     (sender, receiver, created_at): the indexes left are the ones the
//     idempotency keys and the history need.
//
//     go test ./db/ledgerstore -run '^$' -bench 'Transfers|TransferFloor' -benchtime 40000x
func BenchmarkTransferFloor(b *testing.B) {
	defer gctune.Tune(nil)()
	l := benchSetup(b)
	ctx := context.Background()
	for _, stmt := range []string{
		`CREATE TABLE floor_balances (account text COLLATE "C" PRIMARY KEY, units bigint NOT NULL CHECK (units >= 0))`,
		`CREATE TABLE floor_events (id uuid PRIMARY KEY, sender text NOT NULL, receiver text NOT NULL, amount bigint NOT NULL, fee bigint NOT NULL)`,
		`CREATE TABLE floor_transfers (LIKE transfers INCLUDING ALL)`,
		`CREATE TABLE floor_transfers_nv (LIKE transfers INCLUDING ALL)`,
		`DROP INDEX floor_transfers_nv_sender_receiver_created_at_idx`,
		`INSERT INTO floor_balances VALUES ('fee_collector', 0)`,
	} {
		_, err := l.pool.Exec(ctx, stmt)
		require.NoError(b, err)
	}
	_, err := l.pool.Exec(ctx, `INSERT INTO floor_balances SELECT unnest($1::text[]), 1000000000000`, l.ids)
	require.NoError(b, err)
	index := make(map[string]int, len(l.ids))
	for i, id := range l.ids {
		index[id] = i
	}
	for _, shape := range []string{"narrow", "transfer_rows", "transfer_rows_no_velocity"} {
		b.Run(shape, func(b *testing.B) {
			reqs := make(chan floorReq, 4096)
			var deadlocks atomic.Int64
			defer func() { b.ReportMetric(float64(deadlocks.Load()), "deadlock_retries") }()
			var workers sync.WaitGroup
			for range cmp.Or(envInt("LEDGER_BENCH_WORKERS"), 2) {
				workers.Add(1)
				go func() {
					defer workers.Done()
					batch := make([]floorReq, 0, cmp.Or(envInt("LEDGER_BENCH_BATCH"), 256))
					for r := range reqs {
						batch = append(batch[:0], r)
					fill:
						for len(batch) < cap(batch) {
							select {
							case r, ok := <-reqs:
								if !ok {
									break fill
								}
								batch = append(batch, r)
							default:
								break fill
							}
						}
						err := floorCommit(ctx, l, shape, batch)
						for try := 0; err != nil && strings.Contains(err.Error(), "40P01") && try < 5; try++ {
							deadlocks.Add(1) // a safety net: floorCommit locks in sorted order
							err = floorCommit(ctx, l, shape, batch)
						}
						for _, r := range batch {
							r.done <- err
						}
					}
				}()
			}
			defer func() { close(reqs); workers.Wait() }()
			runTransfers(b, l, 1024, func(_ context.Context, t ledgerstore.TransferRequest) (ledgerstore.Transfer, error) {
				done := make(chan error, 1)
				reqs <- floorReq{from: index[t.From], to: index[t.To], amount: t.AmountUnits, key: t.IdempotencyKey, done: done}
				return ledgerstore.Transfer{}, <-done
			})
		})
	}
}

type floorReq struct {
	from, to int
	amount   int64
	key      string
	done     chan error
}

// floorCommit writes one floor batch; see BenchmarkTransferFloor.
func floorCommit(ctx context.Context, l *benchLedger, shape string, batch []floorReq) error {
	delta := map[string]int64{}
	n := len(batch)
	ids, hashes := make([][]byte, n), make([][]byte, n)
	senders, receivers, keys := make([]string, n), make([]string, n), make([]string, n)
	amounts, fees := make([]int64, n), make([]int64, n)
	for i, r := range batch {
		f, err := ledger.TransferFee(r.amount, ledger.BaseFeeBps)
		if err != nil {
			return err
		}
		fee := f.FeeUnits
		id := uuid.Must(uuid.NewV7())
		hash := sha256.Sum256([]byte(r.key))
		ids[i], hashes[i], senders[i], receivers[i], keys[i], amounts[i], fees[i] = id[:], hash[:], l.ids[r.from], l.ids[r.to], r.key, r.amount, fee
		delta[senders[i]] -= r.amount
		delta[receivers[i]] += r.amount - fee
		delta["fee_collector"] += fee
	}
	accounts := make([]string, 0, len(delta))
	for a := range delta {
		accounts = append(accounts, a)
	}
	slices.Sort(accounts) // one lock order for every batch
	deltas := make([]int64, len(accounts))
	for i, a := range accounts {
		deltas[i] = delta[a]
	}
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if shape == "narrow" {
		_, err = tx.Exec(ctx, `INSERT INTO floor_events (id, sender, receiver, amount, fee)
SELECT encode(u.id, 'hex')::uuid, u.s, u.r, u.a, u.f FROM (SELECT unnest($1::bytea[]) AS id, unnest($2::text[]) AS s, unnest($3::text[]) AS r, unnest($4::bigint[]) AS a, unnest($5::bigint[]) AS f) AS u`,
			ids, senders, receivers, amounts, fees)
	} else {
		table := "floor_transfers"
		if shape == "transfer_rows_no_velocity" {
			table = "floor_transfers_nv"
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+table+` (id, sender, receiver, amount_units, fee_units, fee_bps, memo, client_key, created_at, request_hash)
SELECT encode(u.id, 'hex')::uuid, u.s, u.r, u.a, u.f, 50, '', u.k, now(), u.h
FROM (SELECT unnest($1::bytea[]) AS id, unnest($2::text[]) AS s, unnest($3::text[]) AS r, unnest($4::bigint[]) AS a, unnest($5::bigint[]) AS f,
      unnest($6::text[]) AS k, unnest($7::bytea[]) AS h) AS u`,
			ids, senders, receivers, amounts, fees, keys, hashes)
	}
	if err != nil {
		return err
	}
	// The balances last, as the GroupCommitter does: their row locks (the
	// fee account's in every batch) are held only until the commit.
	// A nested loop over the sorted array locks the balance rows in one
	// order in every batch; a hash join would lock them in heap order,
	// which HOT updates keep changing (deadlocks with more than two
	// workers).
	if _, err := tx.Exec(ctx, `SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE floor_balances AS b SET units = b.units + d.delta
FROM (SELECT unnest($1::text[]) COLLATE "C" AS account, unnest($2::bigint[]) AS delta) AS d WHERE b.account = d.account`, accounts, deltas); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
