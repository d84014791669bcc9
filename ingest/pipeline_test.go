package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/devstack"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/relay"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const frame = "alpha"

// source is one emitting database (a TEG) with its outbox writer.
type source struct {
	t        *testing.T
	db       testenv.DB
	registry string
	w        *db.OutboxWriter
	store    *db.Store
	n        atomic.Int64
}

func newSource(t *testing.T, registry, sourceName string) *source {
	d := testenv.NewDB(t, db.RoleTEG)
	return &source{t: t, db: d, registry: registry, w: db.NewOutboxWriter(frame, registry, sourceName, nil), store: db.NewStore(d.Pool, "teg")}
}

// emit writes one event with postings, as a ledger operation would.
func (s *source) emit(typ, key string, postings ...events.Posting) {
	s.t.Helper()
	env, err := events.New(typ, key, "subject-"+key, time.Now())
	require.NoError(s.t, err)
	env.Postings = postings
	require.NoError(s.t, s.store.Tx(context.Background(), func(tx pgx.Tx) error { return s.w.Write(context.Background(), tx, env) }))
	s.n.Add(1)
}

func mint(s *source, key string, amount int64) {
	s.emit(events.TypeTokensIssued, key, events.Posting{Account: "issuance", Bucket: "liquid", Delta: -amount}, events.Posting{Account: "treasury", Bucket: "liquid", Delta: amount})
}

func transfer(s *source, key, from, to string, amount, fee int64) {
	feeAccount := "fee_collector"
	if strings.HasPrefix(key, "xfer-cross") {
		feeAccount = "alpha-op1/fee_collector"
	}
	s.emit(events.TypeTokensTransferred, key,
		events.Posting{Account: from, Bucket: "liquid", Delta: -amount},
		events.Posting{Account: to, Bucket: "liquid", Delta: amount - fee},
		events.Posting{Account: feeAccount, Bucket: "liquid", Delta: fee})
}

type pipeline struct {
	es       testenv.DB
	metrics  *ingest.Metrics // nil: the Applier's own
	applier  *ingest.Applier
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	afterApp func(ingest.BatchResult) error
}

func startConsumer(t *testing.T, p *pipeline, brokers []string, topic string) {
	ctx, cancel := context.WithCancel(context.Background())
	a, err := ingest.NewApplier(ctx, p.es.Pool, frame, p.metrics, nil, nil, ingest.WithAuthentication(testTrust))
	require.NoError(t, err)
	p.applier = a
	c := ingest.NewConsumer(a, ingest.ConsumerOptions{Brokers: brokers, Topic: topic, MaxBatch: 500, AfterApply: p.afterApp, Log: testLog})
	p.wg.Add(1)
	go func() { defer p.wg.Done(); _ = c.Run(ctx) }()
	p.cancel = cancel
	t.Cleanup(func() { cancel(); p.wg.Wait() })
}

func startRelay(t *testing.T, s *source, es testenv.DB, brokers []string, topic string, republishAfter time.Duration) {
	startRelayWithMetrics(t, s, es, brokers, topic, republishAfter, nil)
}

// startRelayWithMetrics starts a relay stopped at cleanup; the returned
// stop (idempotent) stops it earlier. Stopping waits for a produce in
// flight, which does not return while no broker answers.
func startRelayWithMetrics(t *testing.T, s *source, es testenv.DB, brokers []string, topic string, republishAfter time.Duration, reg prometheus.Registerer, kafka ...kgo.Opt) (stop func()) {
	r := relay.New(s.db.Pool, brokers, relay.Options{
		Registry: s.registry, Source: s.w.Source, Topic: topic, BatchSize: 200, Signer: testSigner(s.registry),
		Progress: ingest.ProgressReader{Pool: es.Pool}, RepublishAfter: republishAfter, Log: testLog, Metrics: reg,
		Kafka: kafka,
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func eventCount(t *testing.T, es testenv.DB) int64 {
	var n int64
	require.NoError(t, es.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n))
	return n
}

// waitEvents waits for want events in the log, then checks each was applied
// exactly once. The log's row count cannot show a double application (its
// key is the idempotency key), so the applications are counted by the
// supply audit's events_applied, which the applier bumps in the same
// transaction as the projections it moves.
func waitEvents(t *testing.T, es testenv.DB, want int64, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return eventCount(t, es) >= want }, within, 50*time.Millisecond,
		"want %d events in the EventStore", want)
	require.Equal(t, want, eventCount(t, es), "every event stored once")
	rep, err := ingest.Audit(context.Background(), es.Pool, frame)
	require.NoError(t, err)
	require.Equal(t, want, rep.EventsApplied, "every event applied to the projections exactly once")
}

// unpublished is the number of outbox rows the relay has not had
// acknowledged by the broker.
func unpublished(t *testing.T, s *source) int64 {
	var n int64
	require.NoError(t, s.db.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM outbox_queue) + next_seq - 1 - published_seq FROM outbox_relay_state`).Scan(&n))
	return n
}

func balance(t *testing.T, es testenv.DB, account, bucket string) int64 {
	var b int64
	err := es.Pool.QueryRow(context.Background(), `SELECT balance FROM projection_balances WHERE account = $1 AND bucket = $2`, account, bucket).Scan(&b)
	if db.IsNotFound(err) {
		return 0
	}
	require.NoError(t, err)
	return b
}

func requireAuditClean(t *testing.T, es testenv.DB, issued, circulating int64) {
	t.Helper()
	rep, err := ingest.Audit(context.Background(), es.Pool, frame)
	require.NoError(t, err)
	require.Equal(t, issued, rep.TokensIssued)
	require.Zero(t, rep.TokensDestroyed)
	require.Zero(t, rep.TransitNet)
	require.Equal(t, circulating, rep.TotalCirculating)
	require.Equal(t, issued, rep.NetSupply)
	require.Zero(t, rep.Delta)
	replay, err := ingest.Replay(context.Background(), es.Pool, frame)
	require.NoError(t, err)
	require.True(t, replay.OK, "%+v", replay)
}

// Two TEGs of the frame relay through a real broker into the EventStore;
// both report the cross-registry transfer under the same key, and each
// report lands once under its registry.
func TestPipelineEndToEnd(t *testing.T) {
	t.Parallel()
	topic := "alpha.events"
	k := testenv.NewKafka(t, topic)
	p := &pipeline{es: testenv.NewDB(t, db.RoleEventStore)}
	main := newSource(t, "alpha-main", events.SourceTEG)
	op1 := newSource(t, "alpha-op1", events.SourceTEG)
	startConsumer(t, p, []string{k.Addr()}, topic)
	startRelay(t, main, p.es, []string{k.Addr()}, topic, time.Minute)
	startRelay(t, op1, p.es, []string{k.Addr()}, topic, time.Minute)

	mint(main, "mint-genesis", 1_000_000)
	alice, bob := "did:theprotocol:alice", "did:theprotocol:bob"
	transfer(main, "grant-1", "treasury", alice, 10_000, 0)
	for i := range 50 {
		transfer(main, fmt.Sprintf("xfer-a-%d", i), alice, bob, 100, 1)
	}
	// A cross-registry transfer reported by both TEGs under one key, by
	// the sender's with the postings, by the receiver's without (as the
	// ledger reports it). Its fee goes to the receiving registry: system
	// accounts of another registry are named frame-wide
	// ("<registry>/<account>") in such events.
	transfer(main, "xfer-cross-1", alice, "did:theprotocol:carol", 1_000, 5)
	op1.emit(events.TypeTokensTransferred, "xfer-cross-1")

	waitEvents(t, p.es, 54, 30*time.Second)
	require.EqualValues(t, 10_000-50*100-1_000, balance(t, p.es, alice, "liquid"))
	require.EqualValues(t, 50*99, balance(t, p.es, bob, "liquid"))
	require.EqualValues(t, 50, balance(t, p.es, "alpha-main/fee_collector", "liquid"))
	require.EqualValues(t, 995, balance(t, p.es, "did:theprotocol:carol", "liquid"))
	require.EqualValues(t, 5, balance(t, p.es, "alpha-op1/fee_collector", "liquid"))
	require.EqualValues(t, 1_000_000-10_000, balance(t, p.es, "alpha-main/treasury", "liquid"))
	requireAuditClean(t, p.es, 1_000_000, 1_000_000)

	// Both sources' sequences are complete.
	require.Eventually(t, func() bool {
		progress, err := ingest.Progress(context.Background(), p.es.Pool)
		require.NoError(t, err)
		if len(progress) != 2 {
			return false // op1's copy may still be in flight
		}
		for _, sp := range progress {
			if sp.Pending != 0 || sp.MaxSeen != sp.HWM {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "both sources' sequences are complete")
	require.EqualValues(t, 54, eventCount(t, p.es))
	var regs []string
	rows, err := p.es.Pool.Query(context.Background(), `SELECT registry FROM events WHERE idempotency_key = 'xfer-cross-1' ORDER BY registry`)
	require.NoError(t, err)
	regs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"alpha-main", "alpha-op1"}, regs, "one key, one event per registry")
}

// (a) Kafka down for a while during traffic, then back (same data dir):
// nothing lost, nothing duplicated.
func TestPipelineSurvivesKafkaOutage(t *testing.T) {
	t.Parallel()
	topic := "alpha.events"
	port, err := devstack.FreePort("127.0.0.1")
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "kafka")
	k, err := devstack.StartKafka(devstack.KafkaOptions{Port: port, DataDir: dir, Topics: []string{topic}})
	require.NoError(t, err)
	brokers := []string{k.Addr()}
	p := &pipeline{es: testenv.NewDB(t, db.RoleEventStore)}
	src := newSource(t, "alpha-main", events.SourceTEG)
	startConsumer(t, p, brokers, topic)
	relayMetrics := prometheus.NewRegistry()
	var handed producerHandoffs
	stopRelay := startRelayWithMetrics(t, src, p.es, brokers, topic, time.Minute, relayMetrics, kgo.WithHooks(&handed))

	mint(src, "mint-1", 500_000)
	for i := range 20 {
		transfer(src, fmt.Sprintf("x-%d", i), "treasury", "did:theprotocol:a", 10, 0)
	}
	waitEvents(t, p.es, 21, 30*time.Second)

	k.Stop()
	brokerBack := false
	t.Cleanup(func() {
		if brokerBack {
			return
		}
		// A check failed while the broker was down: the relay's produce
		// would block its stop for ever. Bring the broker back, then
		// stop the relay and the broker.
		if k, err := devstack.StartKafka(devstack.KafkaOptions{Port: port, DataDir: dir, Topics: []string{topic}}); err == nil {
			stopRelay()
			k.Stop()
		}
	})
	errorsBefore := relayErrors(t, relayMetrics)
	handedBefore := handed.n.Load()
	for i := 20; i < 60; i++ {
		transfer(src, fmt.Sprintf("x-%d", i), "treasury", "did:theprotocol:a", 10, 0)
	}
	// The relay cannot get these acknowledged (its producer retries, so it
	// blocks rather than erroring): every row stays unpublished in the
	// outbox, none counted as published (which would lose it), and none
	// reached the EventStore. Checked once the relay has handed rows
	// written during the outage to its producer — it has taken them into
	// a pass and could have (wrongly) marked them — not merely before it
	// got to them.
	require.Eventually(t, func() bool { return handed.n.Load() > handedBefore }, 30*time.Second, 5*time.Millisecond,
		"the relay hands the rows written during the outage to its producer")
	require.EqualValues(t, 40, unpublished(t, src), "rows written while the broker is down stay unpublished")
	require.EqualValues(t, 21, eventCount(t, p.es))
	require.EqualValues(t, errorsBefore, relayErrors(t, relayMetrics), "the relay neither failed a stage nor moved on")

	k, err = devstack.StartKafka(devstack.KafkaOptions{Port: port, DataDir: dir, Topics: []string{topic}})
	require.NoError(t, err)
	brokerBack = true
	t.Cleanup(k.Stop)
	waitEvents(t, p.es, 61, 60*time.Second)
	require.EqualValues(t, 600, balance(t, p.es, "did:theprotocol:a", "liquid"))
	requireAuditClean(t, p.es, 500_000, 500_000)
}

// (b) The consumer dies after its DB commit but before committing offsets:
// the batch is redelivered and absorbed by the idempotency keys.
func TestPipelineConsumerCrashBetweenCommitAndOffsets(t *testing.T) {
	t.Parallel()
	topic := "alpha.events"
	k := testenv.NewKafka(t, topic)
	var crashes, crashedInserted, redelivered atomic.Int64
	p := &pipeline{es: testenv.NewDB(t, db.RoleEventStore), afterApp: func(r ingest.BatchResult) error {
		redelivered.Add(int64(r.Duplicates))
		if r.Inserted > 0 && crashes.Add(1) == 1 {
			crashedInserted.Store(int64(r.Inserted))
			return fmt.Errorf("simulated crash after commit")
		}
		return nil
	}}
	src := newSource(t, "alpha-main", events.SourceTEG)
	mint(src, "mint-1", 100_000)
	for i := range 30 {
		transfer(src, fmt.Sprintf("x-%d", i), "treasury", "did:theprotocol:b", 7, 1)
	}
	startRelay(t, src, p.es, []string{k.Addr()}, topic, time.Minute)
	startConsumer(t, p, []string{k.Addr()}, topic)
	waitEvents(t, p.es, 31, 60*time.Second)
	require.GreaterOrEqual(t, crashes.Load(), int64(1), "the consumer crashed after a commit")
	// The crashed batch's offsets were never committed, so its records came
	// back and were dropped as duplicates rather than applied again.
	require.Eventually(t, func() bool { return redelivered.Load() >= crashedInserted.Load() }, 60*time.Second, 50*time.Millisecond,
		"the batch committed before the crash (%d events) is redelivered and absorbed; %d duplicates seen", crashedInserted.Load(), redelivered.Load())
	require.EqualValues(t, 30*6, balance(t, p.es, "did:theprotocol:b", "liquid"))
	requireAuditClean(t, p.es, 100_000, 100_000)
}

// (c) The broker restarts empty with events in flight: the EventStore's
// high-water mark stalls, the relay re-publishes the gap from its outbox.
func TestPipelineRepublishesWhatAnEmptyBrokerLost(t *testing.T) {
	t.Parallel()
	topic := "alpha.events"
	port, err := devstack.FreePort("127.0.0.1")
	require.NoError(t, err)
	k, err := devstack.StartKafka(devstack.KafkaOptions{Port: port, Topics: []string{topic}})
	require.NoError(t, err)
	brokers := []string{k.Addr()}
	p := &pipeline{es: testenv.NewDB(t, db.RoleEventStore)}
	src := newSource(t, "alpha-main", events.SourceTEG)
	startConsumer(t, p, brokers, topic)
	mint(src, "mint-1", 100_000)
	startRelay(t, src, p.es, brokers, topic, time.Second)
	waitEvents(t, p.es, 1, 30*time.Second)

	// Stop consuming, publish more, then lose the broker's data.
	p.cancel()
	p.wg.Wait()
	for i := range 25 {
		transfer(src, fmt.Sprintf("x-%d", i), "treasury", "did:theprotocol:c", 3, 0)
	}
	require.Eventually(t, func() bool {
		var unpublished int
		require.NoError(t, src.db.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM outbox_queue) + next_seq - 1 - published_seq FROM outbox_relay_state`).Scan(&unpublished))
		return unpublished == 0
	}, 30*time.Second, 50*time.Millisecond, "the relay published everything to the old broker")
	k.Stop()
	k, err = devstack.StartKafka(devstack.KafkaOptions{Port: port, Topics: []string{topic}})
	require.NoError(t, err)
	t.Cleanup(k.Stop)

	startConsumer(t, p, brokers, topic)
	waitEvents(t, p.es, 26, 90*time.Second)
	require.EqualValues(t, 75, balance(t, p.es, "did:theprotocol:c", "liquid"))
	requireAuditClean(t, p.es, 100_000, 100_000)
}

// (d) An event authored by a source the policy does not allow is
// quarantined and moves nothing; (e) a corrupted projection row is reported
// by the replay, and a rebuild repairs it.
func TestQuarantineAndReplayDetectsCorruption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	es := testenv.NewDB(t, db.RoleEventStore)
	a, err := ingest.NewApplier(ctx, es.Pool, frame, nil, nil, nil)
	require.NoError(t, err)

	rec := func(seq int64, typ, key, src string, postings ...events.Posting) ingest.Record {
		env, err := events.New(typ, key, "s", time.Now())
		require.NoError(t, err)
		env.Frame, env.Registry, env.Source, env.Postings = frame, "alpha-main", src, postings
		raw, err := json.Marshal(env)
		require.NoError(t, err)
		return ingest.Record{Value: raw, SourceSeq: seq}
	}
	ok := rec(1, events.TypeTokensIssued, "mint-1", events.SourceTEG,
		events.Posting{Account: "issuance", Bucket: "liquid", Delta: -1000}, events.Posting{Account: "treasury", Bucket: "liquid", Delta: 1000})
	forged := rec(1, events.TypeTokensTransferred, "forged-1", events.SourceRegistry,
		events.Posting{Account: "treasury", Bucket: "liquid", Delta: -500}, events.Posting{Account: "did:theprotocol:thief", Bucket: "liquid", Delta: 500})
	unbalanced := rec(2, events.TypeTokensTransferred, "bad-1", events.SourceTEG,
		events.Posting{Account: "treasury", Bucket: "liquid", Delta: -5})
	unknown := rec(3, "TokensConjured", "conjure-1", events.SourceTEG)
	garbage := ingest.Record{Value: []byte(`{not json`), SourceSeq: 9}

	res, err := a.Apply(ctx, []ingest.Record{ok, forged, unbalanced, unknown, garbage, ok})
	require.NoError(t, err)
	require.Equal(t, ingest.BatchResult{Received: 6, Inserted: 1, Duplicates: 1, Quarantined: 4, NewestEvent: res.NewestEvent}, res)
	var reasons []string
	rows, err := es.Pool.Query(ctx, `SELECT reason FROM quarantine ORDER BY id`)
	require.NoError(t, err)
	reasons, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, reasons, 4)
	require.Contains(t, reasons[0], `source "registry" may not emit TokensTransferred`)
	require.Contains(t, reasons[1], "unbalanced")
	require.Contains(t, reasons[2], "unknown event type")
	require.Contains(t, reasons[3], "malformed")
	require.EqualValues(t, 0, balance(t, es, "did:theprotocol:thief", "liquid"), "quarantined events never move projections")
	requireAuditClean(t, es, 1000, 1000)

	_, err = es.Pool.Exec(ctx, `UPDATE projection_balances SET balance = balance + 1 WHERE account = 'alpha-main/treasury'`)
	require.NoError(t, err)
	replay, err := ingest.Replay(ctx, es.Pool, frame)
	require.NoError(t, err)
	require.False(t, replay.OK)
	require.Equal(t, []ingest.Mismatch{{Account: "alpha-main/treasury", Bucket: "liquid", Projection: 1001, Replayed: 1000}}, replay.BalanceMismatches)

	require.NoError(t, ingest.Rebuild(ctx, es.Pool, frame))
	requireAuditClean(t, es, 1000, 1000)
}

var testLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// Two EventStore consumers in one group under steady traffic (a rolling
// restart, a second node): the one joining gets partitions promptly — the
// first lets the rebalance through when told one waits, with its writes
// committed — and every event still lands exactly once. How promptly the
// joiner is assigned is a latency figure, not a correctness property: the
// wait below is only a generous bound, and the time is logged.
func TestPipelineConsumerJoinsUnderTraffic(t *testing.T) {
	t.Parallel()
	topic := "alpha.events"
	k := testenv.NewKafka(t, topic)
	brokers := []string{k.Addr()}
	es := testenv.NewDB(t, db.RoleEventStore)
	src := newSource(t, "alpha-main", events.SourceTEG)
	mint(src, "mint-1", 1_000_000)
	startRelay(t, src, es, brokers, topic, 2*time.Second)
	first := &pipeline{es: es}
	startConsumer(t, first, brokers, topic)

	// Steady traffic until told to stop; subjects spread over partitions.
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			transfer(src, fmt.Sprintf("x-%d", i), "treasury", fmt.Sprintf("did:theprotocol:%d", i%16), 10, 1)
			sent.Add(1)
		}
	}()
	require.Eventually(t, func() bool { return eventCount(t, es) > 50 }, 30*time.Second, 20*time.Millisecond, "the first consumer is ingesting")

	second := &pipeline{es: es}
	startConsumer(t, second, brokers, topic)
	adm := kadm.NewClient(newKafkaClient(t, brokers))
	joined := time.Now()
	require.Eventually(t, func() bool {
		groups, err := adm.DescribeGroups(context.Background(), "eventstore-"+frame)
		if err != nil {
			return false
		}
		g := groups["eventstore-"+frame]
		if len(g.Members) != 2 {
			return false
		}
		for _, m := range g.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok || len(a.Topics) != 1 || len(a.Topics[0].Partitions) == 0 {
				return false
			}
		}
		return true
	}, 90*time.Second, 50*time.Millisecond, "both members hold partitions")
	t.Logf("second member assigned %v after joining", time.Since(joined).Round(time.Millisecond))
	// Both ingest for a while, then the traffic stops.
	before := sent.Load()
	require.Eventually(t, func() bool { return sent.Load() > before+200 }, 30*time.Second, 20*time.Millisecond)
	close(stop)
	wg.Wait()

	n := sent.Load()
	waitEvents(t, es, n+1, 90*time.Second)
	var received int64
	for i := range 16 {
		received += balance(t, es, fmt.Sprintf("did:theprotocol:%d", i), "liquid")
	}
	require.Equal(t, 9*n, received)
	requireAuditClean(t, es, 1_000_000, 1_000_000)
	// Each member saw only its partitions' sequence numbers; the stored
	// progress holds them all (neither erased the other's).
	progress, err := ingest.Progress(context.Background(), es.Pool)
	require.NoError(t, err)
	require.Len(t, progress, 1)
	require.Equal(t, n+1, progress[0].HWM, "%+v", progress[0])
	require.Zero(t, progress[0].Pending)
}

// relayErrors is the relay's failure count over all stages.
// producerHandoffs counts the records a relay's producer buffered (handed
// to the client for sending, acknowledged or not).
type producerHandoffs struct{ n atomic.Int64 }

func (h *producerHandoffs) OnProduceRecordBuffered(*kgo.Record) { h.n.Add(1) }

func relayErrors(t *testing.T, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "outbox_relay_errors_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func newKafkaClient(t *testing.T, brokers []string) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}
