package node_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// BenchmarkOutboxToProjectionLag runs a node (ledger, relay, Kafka,
// EventStore consumer) under sustained transfer load through the group
// committer and reports the lag from an event's commit in the TEG
// (occurred_at) to its arrival in the EventStore's log and projections
// (ingested_at, the same transaction), p50 and p99, and the transfers/s the
// load reached. LAG_BENCH_SECONDS sets the load duration (default 10).
func BenchmarkOutboxToProjectionLag(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		id := fmt.Sprintf("b%d", time.Now().UnixNano()%1_000_000_000)
		frame, reg := testRegistryID(id)
		frame.GenesisSupplyUnits = 1_000_000_000 * 100_000_000
		n, err := node.Start(ctx, node.Options{
			Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(b),
			TemporalAddr: testenv.TemporalAddr(b), KafkaBrokers: testenv.KafkaBrokers(b), DataDir: b.TempDir(), Log: quietLog,
		})
		require.NoError(b, err)
		const agents = 200
		dids := make([]string, agents)
		for i := range dids {
			dids[i] = "did:theprotocol:" + uuid.NewString()
			_, _, err := n.Ledger.OpenAccount(ctx, dids[i], ledger.KindAgent)
			require.NoError(b, err)
			_, err = n.Ledger.Grant(ctx, ledgerstore.SupplyRequest{To: dids[i], AmountUnits: 1_000_000 * 100_000_000, Reason: "bench", Actor: "admin:bench", IdempotencyKey: "g-" + dids[i]})
			require.NoError(b, err)
		}
		gc := n.Ledger.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
		start := time.Now()
		dur := time.Duration(envInt("LAG_BENCH_SECONDS", 10)) * time.Second
		var done, failed atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		b.StartTimer()
		for w := range 256 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Since(start) < dur; i++ {
					from, to := dids[(w+i)%agents], dids[(w+i*7+1)%agents]
					if from == to {
						continue
					}
					_, err := gc.Transfer(ctx, ledgerstore.TransferRequest{From: from, To: to, AmountUnits: 1000 + int64(i%100), IdempotencyKey: fmt.Sprintf("w%d-%d", w, i)})
					if err != nil {
						// Every account is funded far beyond the load, so a
						// failure is a fault; it would also shrink the
						// transfers/s and lag sample without a trace.
						if failed.Add(1) == 1 {
							firstErr.Store(err)
						}
						continue
					}
					done.Add(1)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		gc.Close()
		if f := failed.Load(); f > 0 {
			b.Fatalf("%d of %d transfers failed; first: %v", f, f+done.Load(), firstErr.Load())
		}
		if done.Load() == 0 {
			b.Fatal("no transfer completed")
		}
		teg, es := n.Pools[db.RoleTEG], n.Pools[db.RoleEventStore]
		var outbox int64
		require.NoError(b, teg.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outbox))
		// The condition runs on its own goroutine, where require may not
		// stop the benchmark: keep the last query error and report it.
		var lastErr error
		var mu sync.Mutex
		ok := assert.Eventually(b, func() bool {
			var got int64
			err := es.QueryRow(ctx, `SELECT count(*) FROM events WHERE source = 'teg'`).Scan(&got)
			mu.Lock()
			lastErr = err
			mu.Unlock()
			return err == nil && got == outbox
		}, 5*time.Minute, 200*time.Millisecond)
		if !ok {
			mu.Lock()
			err := lastErr
			mu.Unlock()
			b.Fatalf("EventStore did not catch up with %d outbox rows (last query error: %v)", outbox, err)
		}
		b.StopTimer()
		var p50, p99, maxLag float64
		require.NoError(b, es.QueryRow(ctx, `SELECT
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ingested_at - occurred_at)),
			percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM ingested_at - occurred_at)),
			max(extract(epoch FROM ingested_at - occurred_at))
			FROM events WHERE source = 'teg' AND event_type = 'TokensTransferred'`).Scan(&p50, &p99, &maxLag))
		b.ReportMetric(float64(done.Load())/elapsed.Seconds(), "transfers/s")
		b.ReportMetric(p50*1000, "lag_p50_ms")
		b.ReportMetric(p99*1000, "lag_p99_ms")
		b.ReportMetric(maxLag*1000, "lag_max_ms")
		n.Stop(ctx)
		deleteSchedules(n, reg.ID)
		b.StartTimer()
	}
}
