package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type fixedProgress struct{ hwm int64 }

func (f *fixedProgress) HighWaterMark(context.Context, string, string) (int64, error) {
	return f.hwm, nil
}

// TestSequencingWithoutRewritingRows checks the outbox's sequencing path
// without Kafka: numbers are gap-free and follow commit order (a row
// committed late gets the next number, not its id's place), the outbox
// rows are never updated, the unpublished and re-publish reads come out in
// sequence order, and retention deletes only whole batches that are both
// old and acknowledged.
func TestSequencingWithoutRewritingRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := testenv.NewDB(t, db.RoleTEG)
	w := db.NewOutboxWriter("alpha", "alpha-main", events.SourceTEG, nil)
	now := time.Now().UTC()
	write := func(tx pgx.Tx, keys ...string) {
		envs := make([]events.Envelope, len(keys))
		for i, k := range keys {
			env, err := events.New(events.TypeHoldPlaced, k, "did:theprotocol:a", now)
			require.NoError(t, err)
			envs[i] = env
		}
		require.NoError(t, w.WriteBatch(ctx, tx, envs))
	}
	commit := func(keys ...string) {
		require.NoError(t, pgx.BeginFunc(ctx, tdb.Pool, func(tx pgx.Tx) error { write(tx, keys...); return nil }))
	}
	clock := now
	progress := &fixedProgress{}
	r := New(tdb.Pool, nil, Options{Registry: "alpha-main", Source: "teg", BatchSize: 3, Progress: progress,
		Retention: time.Hour, Now: func() time.Time { return clock }})
	out := db.NewOutboxStore(tdb.Pool)
	unpublished := func() []string {
		rows, err := out.Unpublished(ctx, 100)
		require.NoError(t, err)
		var keys []string
		for i, row := range rows {
			var env events.Envelope
			require.NoError(t, json.Unmarshal(row.Envelope, &env))
			require.EqualValues(t, rows[0].Seq+int64(i), row.Seq, "gap-free, in order")
			keys = append(keys, fmt.Sprintf("%d:%s", row.Seq, env.IdempotencyKey))
		}
		return keys
	}

	// Where each row's tuple is and which transaction wrote it: an
	// update would change both.
	tuples := func() map[string]string {
		rows, err := tdb.Pool.Query(ctx, `SELECT idempotency_key, ctid::text || '/' || xmin::text FROM outbox`)
		require.NoError(t, err)
		out := map[string]string{}
		for rows.Next() {
			var k, v string
			require.NoError(t, rows.Scan(&k, &v))
			out[k] = v
		}
		require.NoError(t, rows.Err())
		return out
	}
	// A transaction that took its id first but commits last.
	late, err := tdb.Pool.Begin(ctx)
	require.NoError(t, err)
	write(late, "late")
	commit("a", "b")
	commit("c", "d")
	before := tuples()
	fresh, err := r.sequence(ctx) // BatchSize 3: a, b, c
	require.NoError(t, err)
	require.Len(t, fresh, 3)
	require.EqualValues(t, []int64{1, 2, 3}, []int64{fresh[0].Seq, fresh[1].Seq, fresh[2].Seq})
	seq := func() {
		_, err := r.sequence(ctx)
		require.NoError(t, err)
	}
	seq() // d
	require.NoError(t, late.Commit(ctx))
	before["late"] = tuples()["late"]
	seq()                        // late
	fresh, err = r.sequence(ctx) // idle: writes nothing
	require.NoError(t, err)
	require.Empty(t, fresh)
	require.Equal(t, []string{"1:a", "2:b", "3:c", "4:d", "5:late"}, unpublished())

	require.Len(t, before, 5)
	require.Equal(t, before, tuples(), "outbox rows are never updated")
	lagRows, oldest, err := out.Lag(ctx, now.Add(time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 5, lagRows)
	require.WithinDuration(t, now, oldest, time.Millisecond)

	require.NoError(t, out.MarkPublished(ctx, 2))
	require.Equal(t, []string{"3:c", "4:d", "5:late"}, unpublished())
	commit("e")
	lagRows, _, err = out.Lag(ctx, now.Add(time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 4, lagRows, "3 sequenced and 1 queued")
	seq()
	require.Equal(t, []string{"3:c", "4:d", "5:late", "6:e"}, unpublished())

	// Re-publishing reads only published rows of the range.
	require.NoError(t, out.MarkPublished(ctx, 5))
	rows, err := out.Range(ctx, 2, 6, 10)
	require.NoError(t, err)
	var seqs []int64
	for _, row := range rows {
		seqs = append(seqs, row.Seq)
	}
	require.Equal(t, []int64{2, 3, 4, 5}, seqs)
	rows, err = out.Range(ctx, 2, 6, 2)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.EqualValues(t, 3, rows[1].Seq)

	// Retention: nothing before the cutoff; then only whole batches the
	// EventStore acknowledged.
	count := func() (n int) {
		require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n))
		return n
	}
	progress.hwm = 2
	require.NoError(t, r.retain(ctx, clock))
	require.Equal(t, 6, count(), "nothing is older than the retention")
	clock = clock.Add(2 * time.Hour)
	r.ackedSeq = 2
	require.NoError(t, r.retain(ctx, clock))
	require.Equal(t, 6, count(), "the first batch (1–3) is not acknowledged entirely")
	r.ackedSeq = 4
	require.NoError(t, r.retain(ctx, clock))
	require.Equal(t, 2, count(), "batches 1–3 and 4 are gone, 5 and 6 stay")
	require.NoError(t, out.MarkPublished(ctx, 6))
	rows, err = out.Range(ctx, 5, 6, 10)
	require.NoError(t, err)
	require.Len(t, rows, 2)
}
