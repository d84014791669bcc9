package ingest_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// A batch that repeats events already in the log (a redelivery mixed with
// new events) writes only the new ones, projects only their postings, and
// a replay of the segments — which keep the repeated bodies, marked
// skipped — agrees with the projections; a rebuild reproduces them.
func TestRedeliveredEventsInAMixedBatchApplyOnce(t *testing.T) {
	ctx := context.Background()
	es, a := newTestApplier(t, nil)
	recs := synthRecords(t, 3000, 50, 0, 7)

	res, err := a.Apply(ctx, recs[:2000])
	require.NoError(t, err)
	require.Equal(t, 2000, res.Inserted)
	firstBalances := balances(t, es)

	// Half of the first batch again, interleaved with 1,000 new events.
	var mixed []ingest.Record
	for i := range 1000 {
		mixed = append(mixed, recs[2*i], recs[2000+i])
	}
	res, err = a.Apply(ctx, mixed)
	require.NoError(t, err)
	require.Equal(t, 1000, res.Inserted)
	require.Equal(t, 1000, res.Duplicates)
	require.EqualValues(t, 3000, eventCount(t, es))

	// The projections equal a clean application of the 3,000 events once.
	ref := testenv.NewDB(t, db.RoleEventStore)
	b, err := ingest.NewApplier(ctx, ref.Pool, frame, nil, nil, nil)
	require.NoError(t, err)
	_, err = b.Apply(ctx, recs)
	require.NoError(t, err)
	got, err := ingest.Audit(ctx, es.Pool, frame)
	require.NoError(t, err)
	want, err := ingest.Audit(ctx, ref.Pool, frame)
	require.NoError(t, err)
	got.UpdatedAt = want.UpdatedAt
	require.Equal(t, want, got)
	require.Equal(t, balances(t, ref), balances(t, es))
	require.NotEqual(t, firstBalances, balances(t, es), "the new events moved balances")

	var skipped int
	require.NoError(t, es.Pool.QueryRow(ctx, `SELECT coalesce(sum(cardinality(skipped)), 0) FROM event_segments`).Scan(&skipped))
	require.Equal(t, 1000, skipped, "the repeated bodies stay in the segment, marked")

	rep, err := ingest.Replay(ctx, es.Pool, frame)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep)
	require.EqualValues(t, 3000, rep.EventRows)

	before := balances(t, es)
	require.NoError(t, ingest.Rebuild(ctx, es.Pool, frame))
	require.Equal(t, before, balances(t, es))
	rep, err = ingest.Replay(ctx, es.Pool, frame)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep)
}

func balances(t *testing.T, es testenv.DB) map[string]int64 {
	t.Helper()
	rows, err := es.Pool.Query(context.Background(), `SELECT account || '|' || bucket, balance FROM projection_balances WHERE balance <> 0`)
	require.NoError(t, err)
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var v int64
		require.NoError(t, rows.Scan(&k, &v))
		out[k] = v
	}
	require.NoError(t, rows.Err())
	return out
}

// Rows ingested before segments existed keep their json envelope; replay
// and rebuild read both kinds.
func TestReplayReadsLegacyJSONRowsAndSegments(t *testing.T) {
	ctx := context.Background()
	es := testenv.NewDB(t, db.RoleEventStore)
	recs := synthRecords(t, 600, 20, 0, 11)

	// The first 100 events as the old ingest stored them (json envelope, no
	// segment); ref applies the same events the current way.
	ref := testenv.NewDB(t, db.RoleEventStore)
	r, err := ingest.NewApplier(ctx, ref.Pool, frame, nil, nil, nil)
	require.NoError(t, err)
	_, err = r.Apply(ctx, recs[:100])
	require.NoError(t, err)
	for _, rec := range recs[:100] {
		_, err := es.Pool.Exec(ctx, `INSERT INTO events (idempotency_key, event_id, event_type, frame, registry, source, source_seq, subject, occurred_at, ingested_at, envelope)
			SELECT e->>'idempotency_key', (e->>'event_id')::uuid, e->>'type', e->>'frame', e->>'registry', e->>'source', $2, e->>'subject', (e->>'occurred_at')::timestamptz, now(), e
			FROM (SELECT $1::json AS e) AS x`, string(rec.Value), rec.SourceSeq)
		require.NoError(t, err)
	}
	require.NoError(t, ingest.Rebuild(ctx, es.Pool, frame))
	require.Equal(t, balances(t, ref), balances(t, es), "rebuild read the json rows")

	// Then new events through the applier, into segments.
	a, err := ingest.NewApplier(ctx, es.Pool, frame, nil, nil, nil)
	require.NoError(t, err)
	res, err := a.Apply(ctx, recs[50:]) // 50 repeats of legacy rows
	require.NoError(t, err)
	require.Equal(t, 500, res.Inserted)
	require.Equal(t, 50, res.Duplicates)
	_, err = r.Apply(ctx, recs[100:])
	require.NoError(t, err)
	require.Equal(t, balances(t, ref), balances(t, es))

	rep, err := ingest.Replay(ctx, es.Pool, frame)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep)
	require.EqualValues(t, 600, rep.Replayed.EventsApplied)
	require.EqualValues(t, 600, rep.EventRows)
}

// Only events whose sequence number was seen before are probed for their
// key. A source that sends a logged key again under a new sequence number
// (a bug upstream) makes the COPY collide: the batch is written again with
// every key probed, and each event still lands once.
func TestKeyReusedUnderANewSequenceNumberAppliesOnce(t *testing.T) {
	ctx := context.Background()
	m := ingest.NewMetrics(nil)
	es, a := newTestApplier(t, m)
	recs := synthRecords(t, 1500, 40, 0, 13)
	_, err := a.Apply(ctx, recs[:1000])
	require.NoError(t, err)

	// 500 new events, and 10 logged ones again under sequence numbers
	// above everything the source sent.
	batch := append([]ingest.Record{}, recs[1000:]...)
	for i := range 10 {
		r := recs[i*7]
		r.SourceSeq = int64(1501 + i)
		batch = append(batch, r)
	}
	res, err := a.Apply(ctx, batch)
	require.NoError(t, err)
	require.Equal(t, 500, res.Inserted)
	require.Equal(t, 10, res.Duplicates)
	require.EqualValues(t, 1500, eventCount(t, es))
	require.Equal(t, 1.0, testutil.ToFloat64(m.KeyCollisions))
	requireSameAsCleanApply(t, es, recs)

	// A plain redelivery (sequence numbers already seen) is probed, not
	// collided: the counter stays.
	res, err = a.Apply(ctx, recs[200:400])
	require.NoError(t, err)
	require.Equal(t, 0, res.Inserted)
	require.Equal(t, 200, res.Duplicates)
	require.Equal(t, 1.0, testutil.ToFloat64(m.KeyCollisions))
}

// Two batches written at once that share records land each event once,
// whichever commits first.
func TestConcurrentBatchesSharingRecordsApplyOnce(t *testing.T) {
	ctx := context.Background()
	es, a := newTestApplier(t, nil)
	recs := synthRecords(t, 4000, 60, 0, 17)
	first := append(append([]ingest.Record{}, recs[:2000]...), recs[2500:3000]...)
	second := append([]ingest.Record{}, recs[1500:]...) // shares 1,000 records with first
	p1, err := a.Prepare(first)
	require.NoError(t, err)
	p2, err := a.Prepare(second)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var r1, r2 ingest.BatchResult
	var e1, e2 error
	wg.Add(2)
	go func() { defer wg.Done(); r1, e1 = a.ApplyPrepared(ctx, p1) }()
	go func() { defer wg.Done(); r2, e2 = a.ApplyPrepared(ctx, p2) }()
	wg.Wait()
	require.NoError(t, e1)
	require.NoError(t, e2)
	require.Equal(t, 4000, r1.Inserted+r2.Inserted)
	require.Equal(t, 1000, r1.Duplicates+r2.Duplicates)
	require.EqualValues(t, 4000, eventCount(t, es))
	requireSameAsCleanApply(t, es, recs)
}

// A batch skips the records an earlier batch in flight is writing. If that
// batch then fails, its records are delivered again (the consumer commits
// no offset from the failed batch on) and land then: nothing is lost.
func TestRecordsSkippedForAFailedEarlierBatchLandOnRedelivery(t *testing.T) {
	ctx := context.Background()
	es, a := newTestApplier(t, nil)
	recs := synthRecords(t, 3000, 60, 0, 19)
	earlier, err := a.Prepare(recs[:2000])
	require.NoError(t, err)
	release := a.ClaimForTest(earlier) // in flight…

	res, err := a.Apply(ctx, recs[1000:]) // …while this batch is written
	require.NoError(t, err)
	require.Equal(t, 1000, res.Inserted)
	require.Equal(t, 1000, res.Duplicates, "the shared records are left to the earlier batch")
	release() // …which fails: it wrote nothing
	require.EqualValues(t, 1000, eventCount(t, es))

	// Redelivery from the failed batch's offsets.
	res, err = a.Apply(ctx, recs)
	require.NoError(t, err)
	require.Equal(t, 2000, res.Inserted, "the failed batch's records, shared ones included")
	require.EqualValues(t, 3000, eventCount(t, es))
	requireSameAsCleanApply(t, es, recs)
}

// requireSameAsCleanApply checks es's projections and audit against a
// fresh EventStore that applied recs once, and replays es's log.
func requireSameAsCleanApply(t *testing.T, es testenv.DB, recs []ingest.Record) {
	t.Helper()
	ctx := context.Background()
	ref := testenv.NewDB(t, db.RoleEventStore)
	b, err := ingest.NewApplier(ctx, ref.Pool, frame, nil, nil, nil)
	require.NoError(t, err)
	_, err = b.Apply(ctx, recs)
	require.NoError(t, err)
	require.Equal(t, balances(t, ref), balances(t, es))
	got, err := ingest.Audit(ctx, es.Pool, frame)
	require.NoError(t, err)
	want, err := ingest.Audit(ctx, ref.Pool, frame)
	require.NoError(t, err)
	got.UpdatedAt = want.UpdatedAt
	require.Equal(t, want, got)
	rep, err := ingest.Replay(ctx, es.Pool, frame)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep)
}

// Segments written with zstd (before s2) are still read by replays and
// rebuilds, next to s2 ones.
func TestReplayReadsZstdAndS2Segments(t *testing.T) {
	ctx := context.Background()
	es, a := newTestApplier(t, nil)
	recs := synthRecords(t, 1200, 30, 0, 23)
	_, err := a.Apply(ctx, recs[:600])
	require.NoError(t, err)
	// Rewrite those segments as the previous build stored them.
	rows, err := es.Pool.Query(ctx, `SELECT id, data FROM event_segments`)
	require.NoError(t, err)
	type seg struct {
		id   int64
		data []byte
	}
	var segs []seg
	for rows.Next() {
		var s seg
		require.NoError(t, rows.Scan(&s.id, &s.data))
		segs = append(segs, s)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, segs)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	require.NoError(t, err)
	for _, s := range segs {
		plain, err := s2.Decode(nil, s.data)
		require.NoError(t, err)
		_, err = es.Pool.Exec(ctx, `UPDATE event_segments SET codec = $1, data = $2 WHERE id = $3`, ingest.CodecZstd, enc.EncodeAll(plain, nil), s.id)
		require.NoError(t, err)
	}
	_, err = a.Apply(ctx, recs[600:])
	require.NoError(t, err)
	var codecs []string
	require.NoError(t, es.Pool.QueryRow(ctx, `SELECT array_agg(DISTINCT codec ORDER BY codec) FROM event_segments`).Scan(&codecs))
	require.Equal(t, []string{ingest.CodecS2, ingest.CodecZstd}, codecs)

	before := balances(t, es)
	require.NoError(t, ingest.Rebuild(ctx, es.Pool, frame))
	require.Equal(t, before, balances(t, es))
	requireSameAsCleanApply(t, es, recs)
}

// A batch that moves existing and new accounts updates the first in place
// and inserts the second.
func TestBatchWithExistingAndNewAccounts(t *testing.T) {
	ctx := context.Background()
	es, a := newTestApplier(t, nil)
	recs := synthRecords(t, 400, 500, 0, 29) // 500 agents: the first batch meets some
	_, err := a.Apply(ctx, recs[:100])
	require.NoError(t, err)
	before := len(balances(t, es))
	_, err = a.Apply(ctx, recs[100:])
	require.NoError(t, err)
	require.Greater(t, len(balances(t, es)), before, "new accounts got rows")
	requireSameAsCleanApply(t, es, recs)
}

// newTestApplier returns a fresh EventStore database and its Applier (m
// nil: metrics of its own).
func newTestApplier(t *testing.T, m *ingest.Metrics) (testenv.DB, *ingest.Applier) {
	t.Helper()
	es := testenv.NewDB(t, db.RoleEventStore)
	a, err := ingest.NewApplier(context.Background(), es.Pool, frame, m, nil, nil)
	require.NoError(t, err)
	return es, a
}

// A batch carrying EmissionPolicyChanged says so, and the consumer writes
// it alone (the batches after it are checked against the new policy).
func TestPreparedReportsAPolicyChange(t *testing.T) {
	_, a := newTestApplier(t, nil)
	recs := synthRecords(t, 10, 5, 0, 31)
	p, err := a.Prepare(recs)
	require.NoError(t, err)
	require.False(t, p.ChangesPolicy())

	env, err := events.New(events.TypeEmissionPolicyChanged, "policy-test-1", "TokensTransferred", time.Now())
	require.NoError(t, err)
	env.Frame, env.Registry, env.Source = frame, "alpha-main", events.SourceEventStore
	raw, err := json.Marshal(env)
	require.NoError(t, err)
	p, err = a.Prepare(append(recs, ingest.Record{Value: raw, SourceSeq: 1}))
	require.NoError(t, err)
	require.True(t, p.ChangesPolicy())

	// Quarantined (here: a source the policy does not allow), it changes
	// nothing.
	env.Source = events.SourceTEG
	raw, err = json.Marshal(env)
	require.NoError(t, err)
	p, err = a.Prepare(append(recs, ingest.Record{Value: raw, SourceSeq: 1}))
	require.NoError(t, err)
	require.False(t, p.ChangesPolicy())
}

// Balances reads one account's projected buckets, in bucket order, as the
// projection holds them.
func TestBalancesReadsOneAccount(t *testing.T) {
	ctx := context.Background()
	es, a := newTestApplier(t, nil)
	_, err := a.Apply(ctx, synthRecords(t, 500, 10, 0, 5))
	require.NoError(t, err)
	all := balances(t, es)
	var account string
	for k := range all {
		if acc, _, _ := strings.Cut(k, "|"); strings.HasPrefix(acc, "did:") {
			account = acc
			break
		}
	}
	require.NotEmpty(t, account)

	list, err := ingest.Balances(ctx, es.Pool, account)
	require.NoError(t, err)
	got := map[string]int64{}
	for i, b := range list {
		if i > 0 {
			require.Less(t, list[i-1].Bucket, b.Bucket, "ordered by bucket")
		}
		if b.Balance != 0 {
			got[account+"|"+b.Bucket] = b.Balance
		}
	}
	want := map[string]int64{}
	for k, v := range all {
		if strings.HasPrefix(k, account+"|") {
			want[k] = v
		}
	}
	require.NotEmpty(t, want)
	require.Equal(t, want, got)

	none, err := ingest.Balances(ctx, es.Pool, "did:nobody")
	require.NoError(t, err)
	require.Empty(t, none)
}
