package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/gctune"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/relay"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// synthRecords makes n events of one source (sequence 1..n) as the ledger
// writes them for transfers among accounts agents: for each transfer a
// TokensTransferred (sender → receiver, net of the fee) and a
// TransactionFeeCollected (sender → fee_collector), keyed "xfer-<id>" and
// "fee-<id>" with time-ordered transfer ids, postings and payloads shaped
// like db/ledgerstore's. dupPct percent of them are repeated (same key and
// sequence, as a re-published or redelivered record would be).
func synthRecords(tb testing.TB, n, agents int, dupPct float64, seed uint64) []ingest.Record {
	rng := rand.New(rand.NewPCG(seed, seed))
	out := make([]ingest.Record, 0, n+int(float64(n)*dupPct/100)+1)
	now := time.Now().UTC()
	var from, to, tid string
	var amount, fee int64
	for i := 1; i <= n; i++ {
		var env events.Envelope
		if i%2 == 1 {
			from = fmt.Sprintf("did:theprotocol:%08d", rng.IntN(agents))
			to = fmt.Sprintf("did:theprotocol:%08d", rng.IntN(agents))
			amount = int64(rng.IntN(1_000_000) + 1000)
			fee = (amount*50 + 9_999) / 10_000
			id, err := uuid.NewV7()
			require.NoError(tb, err)
			tid = id.String()
			env = events.Envelope{
				IdempotencyKey: "xfer-" + tid, Type: events.TypeTokensTransferred,
				Postings: []events.Posting{{Account: from, Bucket: "liquid", Delta: fee - amount}, {Account: to, Bucket: "liquid", Delta: amount - fee}},
				Payload: fmt.Appendf(nil, `{"transfer_id":"%s","from":"%s","to":"%s","amount_units":%d,"fee_units":%d,"net_units":%d,"fee_bps":50}`,
					tid, from, to, amount, fee, amount-fee),
			}
		} else {
			env = events.Envelope{
				IdempotencyKey: "fee-" + tid, Type: events.TypeTransactionFeeCollected,
				Postings: []events.Posting{{Account: from, Bucket: "liquid", Delta: -fee}, {Account: "fee_collector", Bucket: "liquid", Delta: fee}},
				Payload:  fmt.Appendf(nil, `{"transfer_id":"%s","payer":"%s","fee_units":%d,"fee_bps":50}`, tid, from, fee),
			}
		}
		env.Frame, env.Registry, env.Source, env.OccurredAt, env.Subject = frame, "alpha-main", events.SourceTEG, now, from
		env.SchemaVersion = events.SchemaVersion
		var err error
		env.EventID, err = newUUID(rng)
		require.NoError(tb, err)
		raw, err := json.Marshal(env)
		require.NoError(tb, err)
		rec := ingest.Record{Value: raw, SourceSeq: int64(i)}
		out = append(out, rec)
		if rng.Float64()*100 < dupPct {
			out = append(out, rec)
		}
	}
	return out
}

func newUUID(rng *rand.Rand) ([16]byte, error) {
	var u [16]byte
	for i := range u {
		u[i] = byte(rng.IntN(256))
	}
	u[6] = (u[6] & 0x0f) | 0x70
	u[8] = (u[8] & 0x3f) | 0x80
	return u, nil
}

func benchN(def int) int {
	if v, err := strconv.Atoi(os.Getenv("INGEST_BENCH_EVENTS")); err == nil && v > 0 {
		return v
	}
	return def
}

// benchAuth lists the source authentication modes to run, "off" (unsigned
// records, no verification) and "on" (records signed as the relays sign
// them, verified against the trusted keys), or INGEST_BENCH_AUTH (e.g.
// "on"): the two figures side by side are the cost of authentication.
func benchAuth() []string {
	if v := os.Getenv("INGEST_BENCH_AUTH"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"off", "on"}
}

// benchApplierOpts are the Applier options of an authentication mode.
func benchApplierOpts(mode string) []ingest.ApplierOption {
	if mode == "on" {
		return []ingest.ApplierOption{ingest.WithAuthentication(testTrust)}
	}
	return nil
}

// BenchmarkApply measures the database side alone: batches of records (5%
// duplicates) through Applier.Apply into a fresh EventStore database, at
// the consumer's default batch size and at a quarter of it, with source
// authentication off and on.
func BenchmarkApply(b *testing.B) {
	defer gctune.Tune(nil)() // as a node runs
	n := benchN(200_000)
	unsigned := synthRecords(b, n, 10_000, 5, 1)
	signed := signRecords(b, unsigned, nil)
	for _, size := range []int{ingest.DefaultBatch, ingest.DefaultBatch / 4} {
		for _, mode := range benchAuth() {
			recs := unsigned
			if mode == "on" {
				recs = signed
			}
			b.Run(fmt.Sprintf("batch=%d/auth=%s", size, mode), func(b *testing.B) {
				benchApply(b, recs, n, size, mode)
			})
		}
	}
}

func benchApply(b *testing.B, recs []ingest.Record, n, size int, mode string) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		es := testenv.NewDB(b, db.RoleEventStore)
		a, err := ingest.NewApplier(ctx, es.Pool, frame, nil, nil, nil, benchApplierOpts(mode)...)
		require.NoError(b, err)
		meter := testenv.StartCPUMeter(es.Pool)
		b.StartTimer()
		start := time.Now()
		for i := 0; i < len(recs); i += size {
			_, err := a.Apply(ctx, recs[i:min(i+size, len(recs))])
			require.NoError(b, err)
		}
		b.ReportMetric(float64(len(recs))/time.Since(start).Seconds(), "records/s")
		b.StopTimer()
		meter.Report(b, len(recs))
		rep, err := ingest.Audit(ctx, es.Pool, frame)
		require.NoError(b, err)
		require.EqualValues(b, n, rep.EventsApplied)
		require.Zero(b, rep.Delta)
		b.StartTimer()
	}
}

// BenchmarkKafkaToEventStore measures the whole ingest path: records already
// on a broker, consumed by the consumer group, applied and committed, until
// all are in the log. 1,000,000 records by default: with fewer, joining the
// group and the pipeline's first and last batch weigh on the figure.
//
// The broker is the shared embedded one, which runs in the testenv process
// under `theprotocol testenv` (as a node's broker is not in the EventStore
// consumer's process): its CPU is not in go_cpu_us/op, though it runs on
// the same two cores. The records are produced to one topic per run before
// any is timed and then dropped from this process, whose heap otherwise
// held them (and, with an in-process broker, a second copy): gigabytes of
// live heap that made every allocation of the consumer fault in fresh
// pages (9 % of the machine's CPU in clear_page, measured with perf).
func BenchmarkKafkaToEventStore(b *testing.B) {
	defer gctune.Tune(nil)() // as a node runs
	n := benchN(1_000_000)
	inFlights := []int{1, ingest.DefaultInFlight}
	if v := os.Getenv("INGEST_BENCH_INFLIGHT"); v != "" { // e.g. "2,3"
		inFlights = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			require.NoError(b, err)
			inFlights = append(inFlights, n)
		}
	}
	brokers := testenv.KafkaBrokers(b)
	modes := benchAuth()
	topics := map[string]string{}
	topic := func(mode string, inFlight int) string { return mode + "/" + strconv.Itoa(inFlight) }
	records := 0
	func() {
		unsigned := synthRecords(b, n, 10_000, 5, 2)
		records = len(unsigned)
		for _, mode := range modes {
			recs := unsigned
			if mode == "on" {
				// Grouped per partition, as the relays sign.
				recs = signRecords(b, unsigned, func(i int) int { return relay.PartitionOf(benchKey(i), benchPartitions()) })
			}
			for i, inFlight := range inFlights {
				t := fmt.Sprintf("bench-%d-%s-%d.events", time.Now().UnixNano(), mode, i)
				topics[topic(mode, inFlight)] = t
				produceBench(b, brokers, t, recs)
			}
		}
	}()
	runtime.GC()
	// Modes alternate within each in-flight setting, so the two figures
	// compared are taken close together on a shared machine.
	for _, inFlight := range inFlights {
		for _, mode := range modes {
			b.Run(fmt.Sprintf("inflight=%d/auth=%s", inFlight, mode), func(b *testing.B) {
				benchKafkaToEventStore(b, brokers, topics[topic(mode, inFlight)], n, records, inFlight, benchApplierOpts(mode))
			})
		}
	}
}

// produceBench creates topic (4 partitions, like the node's) on brokers and
// produces recs to it; the topic is deleted when the benchmark ends.
func produceBench(b *testing.B, brokers []string, topic string, recs []ingest.Record) {
	ctx := context.Background()
	// Batches stay under the broker's default 1 MiB message limit.
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(512<<10))
	require.NoError(b, err)
	defer prod.Close()
	adm := kadm.NewClient(prod)
	_, err = adm.CreateTopic(ctx, int32(benchPartitions()), -1, nil, topic)
	require.NoError(b, err)
	b.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err == nil {
			_, _ = kadm.NewClient(cl).DeleteTopics(context.Background(), topic)
			cl.Close()
		}
	})
	var wg sync.WaitGroup
	var produceErrs atomic.Int64
	for i, r := range recs {
		wg.Add(1)
		rec := &kgo.Record{Topic: topic, Key: []byte(benchKey(i)), Value: r.Value,
			Headers: []kgo.RecordHeader{{Key: ingest.HeaderSourceSeq, Value: []byte(strconv.FormatInt(r.SourceSeq, 10))}}}
		if r.Auth != nil {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: events.HeaderAuth, Value: r.Auth})
		}
		prod.Produce(ctx, rec,
			func(_ *kgo.Record, err error) {
				if err != nil {
					produceErrs.Add(1)
				}
				wg.Done()
			})
	}
	wg.Wait()
	require.Zero(b, produceErrs.Load(), "every record reached the broker")
}

func benchKafkaToEventStore(b *testing.B, brokers []string, topic string, n, records, inFlight int, opts []ingest.ApplierOption) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		es := testenv.NewDB(b, db.RoleEventStore)
		m := ingest.NewMetrics(nil)
		a, err := ingest.NewApplier(ctx, es.Pool, frame, m, nil, nil, opts...)
		require.NoError(b, err)
		var sizes []int
		var mu sync.Mutex
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		done := make(chan struct{})
		var total int
		batch, _ := strconv.Atoi(os.Getenv("INGEST_BENCH_BATCH")) // 0: the default
		c := ingest.NewConsumer(a, ingest.ConsumerOptions{Brokers: brokers, Topic: topic, MaxInFlight: inFlight, MaxBatch: batch,
			Group: fmt.Sprintf("bench-%d", time.Now().UnixNano()),
			AfterApply: func(r ingest.BatchResult) error {
				mu.Lock()
				defer mu.Unlock()
				sizes = append(sizes, r.Received)
				total += r.Received
				if total >= records {
					select {
					case <-done:
					default:
						close(done)
					}
				}
				return nil
			}})
		var walStart string
		var ckptStart int64
		require.NoError(b, es.Pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text, checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter`).Scan(&walStart, &ckptStart))
		meter := testenv.StartCPUMeter(es.Pool)
		b.StartTimer()
		start := time.Now()
		go func() { _ = c.Run(cctx) }()
		select {
		case <-done:
		case <-cctx.Done():
			b.Fatalf("consumed %d of %d records before the timeout", total, records)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		// CPU per record of this process (consumer) and of Postgres.
		meter.Report(b, records)
		cancel()
		b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
		// The share of the time a batch transaction was running: near 100 %
		// means the database writer is the bottleneck, lower means the
		// consumer waited for polling and decoding.
		var hm dto.Metric
		require.NoError(b, m.BatchSeconds.Write(&hm))
		b.ReportMetric(100*hm.GetHistogram().GetSampleSum()/elapsed.Seconds(), "apply_busy_%")
		if os.Getenv("INGEST_BENCH_TABLESTATS") != "" {
			var walBytes, ckpts int64
			require.NoError(b, es.Pool.QueryRow(ctx, `SELECT pg_current_wal_lsn() - $1::pg_lsn, checkpoints_timed + checkpoints_req - $2 FROM pg_stat_bgwriter`, walStart, ckptStart).Scan(&walBytes, &ckpts))
			b.Logf("WAL %d bytes (%d per record), %d checkpoints", walBytes, walBytes/int64(records), ckpts)
			rows, err := es.Pool.Query(ctx, `SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables ORDER BY n_tup_ins DESC LIMIT 4`)
			require.NoError(b, err)
			for rows.Next() {
				var name string
				var ins, upd, hot, av, aa int64
				require.NoError(b, rows.Scan(&name, &ins, &upd, &hot, &av, &aa))
				b.Logf("%s: ins %d upd %d hot %d autovacuum %d autoanalyze %d", name, ins, upd, hot, av, aa)
			}
		}
		var cm dto.Metric
		require.NoError(b, m.KeyCollisions.Write(&cm))
		b.ReportMetric(cm.GetCounter().GetValue(), "key_collisions")
		sort.Ints(sizes)
		b.ReportMetric(float64(len(sizes)), "batches")
		b.ReportMetric(float64(sizes[len(sizes)/2]), "batch_p50")
		b.ReportMetric(float64(sizes[len(sizes)*9/10]), "batch_p90")
		rep, err := ingest.Audit(ctx, es.Pool, frame)
		require.NoError(b, err)
		require.EqualValues(b, n, rep.EventsApplied)
		require.Zero(b, rep.Delta)
		b.StartTimer()
	}
}

// BenchmarkAuditRead: reading the maintained audit is one primary-key
// lookup, independent of the number of events.
func BenchmarkAuditRead(b *testing.B) {
	ctx := context.Background()
	es := testenv.NewDB(b, db.RoleEventStore)
	a, err := ingest.NewApplier(ctx, es.Pool, frame, nil, nil, nil)
	require.NoError(b, err)
	recs := synthRecords(b, 20_000, 1000, 0, 3)
	for i := 0; i < len(recs); i += 5000 {
		_, err := a.Apply(ctx, recs[i:min(i+5000, len(recs))])
		require.NoError(b, err)
	}
	for b.Loop() {
		if _, err := ingest.Audit(ctx, es.Pool, frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplay recomputes the audit and every balance from the raw
// event log (INGEST_BENCH_EVENTS events, 1,000,000 for the figure).
func BenchmarkReplay(b *testing.B) {
	defer gctune.Tune(nil)() // as a node runs
	ctx := context.Background()
	n := benchN(200_000)
	es := testenv.NewDB(b, db.RoleEventStore)
	a, err := ingest.NewApplier(ctx, es.Pool, frame, nil, nil, nil)
	require.NoError(b, err)
	recs := synthRecords(b, n, 50_000, 0, 4)
	for i := 0; i < len(recs); i += 5000 {
		_, err := a.Apply(ctx, recs[i:min(i+5000, len(recs))])
		require.NoError(b, err)
	}
	recs = nil
	for b.Loop() {
		rep, err := ingest.Replay(ctx, es.Pool, frame)
		require.NoError(b, err)
		require.True(b, rep.OK)
		b.ReportMetric(float64(rep.Replayed.EventsApplied), "events")
	}
}

// benchKey is the Kafka key of the benchmark's i-th record.
func benchKey(i int) string { return strconv.Itoa(i % 64) }

// benchPartitions is the benchmark topic's partition count: 4 like the
// node's, or INGEST_BENCH_PARTITIONS.
func benchPartitions() int {
	if v, err := strconv.Atoi(os.Getenv("INGEST_BENCH_PARTITIONS")); err == nil && v > 0 {
		return v
	}
	return 4
}
