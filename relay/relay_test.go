package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

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
		Retention: time.Hour, RepublishAfter: 365 * 24 * time.Hour, Now: func() time.Time { return clock }})
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
	// EventStore acknowledged. The acknowledgement comes the way it does in
	// production: Step reads the high-water mark from the progress reader
	// and retains up to it (everything is published, so Step needs no
	// broker; the re-publish window is far away, so it re-publishes nothing).
	count := func() (n int) {
		require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n))
		return n
	}
	require.NoError(t, out.MarkPublished(ctx, 6))
	step := func() {
		t.Helper()
		n, err := r.Step(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "nothing left to publish")
	}
	progress.hwm = 2
	step()
	require.Equal(t, 6, count(), "nothing is older than the retention")
	clock = clock.Add(2 * time.Hour)
	step()
	require.Equal(t, 6, count(), "the first batch (1–3) is not acknowledged entirely")
	progress.hwm = 4
	clock = clock.Add(2 * time.Minute) // the next progress check and retention pass are due
	step()
	require.Equal(t, 2, count(), "batches 1–3 and 4 are gone, 5 and 6 stay")
	rows, err = out.Range(ctx, 5, 6, 10)
	require.NoError(t, err)
	require.Len(t, rows, 2)
}

// With a Signer every published record carries a header the registry's
// key verifies, covering its sequence number and envelope, and each signed
// group lies in one partition; without a Signer the records go out
// unsigned.
func TestRelaySignsWhatItPublishes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	topic := "alpha.events"
	k := testenv.NewKafka(t, topic)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	signed, unsigned := testenv.NewDB(t, db.RoleTEG), testenv.NewDB(t, db.RoleRegistry)
	for _, d := range []struct {
		db     testenv.DB
		source string
		signer *events.Signer
	}{{signed, events.SourceTEG, events.NewSigner(key)}, {unsigned, events.SourceRegistry, nil}} {
		w := db.NewOutboxWriter("alpha", "alpha-main", d.source, nil)
		envs := make([]events.Envelope, 600) // three groups at the default size
		for i := range envs {
			env, err := events.New(events.TypeHoldPlaced, fmt.Sprintf("%s-%d", d.source, i), fmt.Sprintf("did:theprotocol:%d", i%7), time.Now())
			require.NoError(t, err)
			envs[i] = env
		}
		require.NoError(t, pgx.BeginFunc(ctx, d.db.Pool, func(tx pgx.Tx) error { return w.WriteBatch(ctx, tx, envs) }))
		r := New(d.db.Pool, []string{k.Addr()}, Options{Registry: "alpha-main", Source: d.source, Topic: topic, Signer: d.signer})
		t.Cleanup(r.Close)
		for {
			n, err := r.Step(ctx)
			require.NoError(t, err)
			if n == 0 {
				break
			}
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	v := events.NewVerifier(events.TrustedKeys{"alpha-main": {key.Public().(ed25519.PublicKey)}})
	seen := map[string]int{}
	groupPartition := map[string]int32{} // signature → partition
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for seen[events.SourceTEG]+seen[events.SourceRegistry] < 1200 {
		fetches := cl.PollFetches(pctx)
		require.NoError(t, pctx.Err(), "all 1,200 records arrive")
		fetches.EachRecord(func(rec *kgo.Record) {
			var env events.Envelope
			require.NoError(t, json.Unmarshal(rec.Value, &env))
			var seq int64
			var auth []byte
			for _, h := range rec.Headers {
				switch h.Key {
				case HeaderSourceSeq:
					seq, err = strconv.ParseInt(string(h.Value), 10, 64)
					require.NoError(t, err)
				case events.HeaderAuth:
					auth = h.Value
				}
			}
			seen[env.Source]++
			verr := v.Verify(auth, seq, rec.Value, env.Registry, env.Source)
			if env.Source == events.SourceRegistry {
				require.NotNil(t, verr)
				require.Equal(t, events.AuthUnsigned, verr.Reason)
				return
			}
			require.Nil(t, verr, "record %d", seq)
			require.EqualValues(t, PartitionOf(env.Subject, 4), rec.Partition, "where the producer put it")
			sig := string(auth[13:77])
			if p, ok := groupPartition[sig]; ok {
				require.Equal(t, p, rec.Partition, "a group lies in one partition")
			}
			groupPartition[sig] = rec.Partition
			// The signature covers the number it was published under.
			require.NotNil(t, v.Verify(auth, seq+1, rec.Value, env.Registry, env.Source))
		})
	}
	require.Equal(t, map[string]int{events.SourceTEG: 600, events.SourceRegistry: 600}, seen)
	require.GreaterOrEqual(t, len(groupPartition), 4, "600 records over 4 partitions: a group or more each")
}
