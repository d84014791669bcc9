package ingest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// forge builds an envelope as a writer to the topic would, with any
// registry it likes to name.
func forge(t *testing.T, registry, typ, key string, postings ...events.Posting) []byte {
	t.Helper()
	env, err := events.New(typ, key, "did:theprotocol:mallory", time.Now())
	require.NoError(t, err)
	env.Frame, env.Registry, env.Source, env.Postings = frame, registry, events.SourceTEG, postings
	raw, err := json.Marshal(env)
	require.NoError(t, err)
	return raw
}

// signAs signs one record with key as registry's relay would.
func signAs(t *testing.T, key ed25519.PrivateKey, registry string, seq int64, raw []byte) []byte {
	t.Helper()
	hdrs, err := events.NewSigner(key).Sign(registry, events.SourceTEG, []int64{seq}, [][]byte{raw})
	require.NoError(t, err)
	return hdrs[0]
}

func quarantineReasons(t *testing.T, es testenv.DB) map[string]string {
	t.Helper()
	rows, err := es.Pool.Query(context.Background(), `SELECT idempotency_key, reason FROM quarantine`)
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var k, r string
		require.NoError(t, rows.Scan(&k, &r))
		out[k] = r
	}
	require.NoError(t, rows.Err())
	return out
}

func allBalances(t *testing.T, es testenv.DB) map[string]int64 {
	t.Helper()
	rows, err := es.Pool.Query(context.Background(), `SELECT account || ' ' || bucket, balance FROM projection_balances WHERE balance <> 0`)
	require.NoError(t, err)
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var b int64
		require.NoError(t, rows.Scan(&k, &b))
		out[k] = b
	}
	require.NoError(t, rows.Err())
	return out
}

// Anyone able to write to the frame's topic produces, with franz-go,
// straight onto it: a record with a huge sequence number, a balanced
// forged TokensIssued, a forged event under the real registry's next
// idempotency key, garbage bytes and a few more forgeries. Ingest keeps
// running, each is quarantined with its reason and counted, the real
// events that follow are all applied, and the forgeries move nothing.
func TestForgedRecordsOnTheTopicAreQuarantined(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	topic := "alpha.events"
	k := testenv.NewKafka(t, topic)
	brokers := []string{k.Addr()}
	m := ingest.NewMetrics(nil)
	p := &pipeline{es: testenv.NewDB(t, db.RoleEventStore), metrics: m}
	main := newSource(t, "alpha-main", events.SourceTEG)
	startConsumer(t, p, brokers, topic)
	startRelay(t, main, p.es, brokers, topic, time.Minute)

	alice, bob, mallory := "did:theprotocol:alice", "did:theprotocol:bob", "did:theprotocol:mallory"
	mint(main, "mint-1", 1_000_000)
	transfer(main, "grant-1", "treasury", alice, 10_000, 0)
	waitEvents(t, p.es, 2, 30*time.Second)
	before := allBalances(t, p.es)

	// The attacker is, say, the operator of alpha-op1: it may write to the
	// topic and holds alpha-op1's key, not alpha-main's.
	op1, stranger := testKeys["alpha-op1"], ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	steal := []events.Posting{{Account: alice, Bucket: "liquid", Delta: -5_000}, {Account: mallory, Bucket: "liquid", Delta: 5_000}}
	printMoney := []events.Posting{{Account: "issuance", Bucket: "liquid", Delta: -1_000_000}, {Account: mallory, Bucket: "liquid", Delta: 1_000_000}}
	nextKey := "xfer-next" // alpha-main's next key, predictable
	hugeSeq := int64(1) << 40
	type forgery struct {
		value []byte
		seq   int64
		auth  []byte
		label string
	}
	var forgeries []forgery
	add := func(value []byte, seq int64, auth []byte, label string) {
		forgeries = append(forgeries, forgery{value, seq, auth, label})
	}
	// A huge sequence number, validly signed by the attacker's own registry.
	huge := forge(t, "alpha-op1", events.TypeTokensTransferred, "huge-seq", steal...)
	add(huge, hugeSeq, signAs(t, op1, "alpha-op1", hugeSeq, huge), "seq_out_of_range")
	// A balanced TokensIssued in alpha-main's name: unsigned, then signed
	// with the attacker's key.
	mintForged := forge(t, "alpha-main", events.TypeTokensIssued, "mint-forged", printMoney...)
	add(mintForged, 3, nil, "unsigned")
	mintForged2 := forge(t, "alpha-main", events.TypeTokensIssued, "mint-forged-2", printMoney...)
	add(mintForged2, 3, signAs(t, op1, "alpha-op1", 3, mintForged2), "wrong_registry")
	// alpha-main's next key, its header naming alpha-main's key.
	squat := forge(t, "alpha-main", events.TypeTokensTransferred, nextKey, steal...)
	badSig := signAs(t, op1, "alpha-main", 3, squat)
	mainID := events.KeyIDOf(testKeys["alpha-main"].Public().(ed25519.PublicKey))
	copy(badSig[1:9], mainID[:])
	add(squat, 3, badSig, "bad_signature")
	// A key nobody trusts, and a header that does not parse.
	stray := forge(t, "alpha-main", events.TypeTokensTransferred, "stray", steal...)
	add(stray, 4, signAs(t, stranger, "alpha-main", 4, stray), "unknown_key")
	cut := forge(t, "alpha-main", events.TypeTokensTransferred, "cut", steal...)
	add(cut, 5, signAs(t, op1, "alpha-main", 5, cut)[:50], "bad_signature_header")
	add([]byte("\x00\xffnot an envelope"), 6, nil, "malformed")

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	produce := func(value []byte, seq int64, auth []byte) {
		rec := &kgo.Record{Topic: topic, Key: []byte("x"), Value: value,
			Headers: []kgo.RecordHeader{{Key: ingest.HeaderSourceSeq, Value: []byte(strconv.FormatInt(seq, 10))}}}
		if auth != nil {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: events.HeaderAuth, Value: auth})
		}
		require.NoError(t, cl.ProduceSync(ctx, rec).FirstErr())
	}
	for _, f := range forgeries {
		produce(f.value, f.seq, f.auth)
	}
	// Under its own name the attacker may use the same key: it is its
	// registry's key, not alpha-main's (and moves nothing here).
	own := forge(t, "alpha-op1", events.TypeTokensTransferred, nextKey)
	produce(own, 1, signAs(t, op1, "alpha-op1", 1, own))

	// The real events follow, alpha-main's next key among them.
	transfer(main, nextKey, alice, bob, 1_000, 10)
	for i := range 20 {
		transfer(main, fmt.Sprintf("xfer-after-%d", i), alice, bob, 100, 1)
	}
	waitEvents(t, p.es, 2+21+1, 60*time.Second)

	// Every forgery quarantined with its reason, and counted under it.
	require.Eventually(t, func() bool { return len(quarantineReasons(t, p.es)) == len(forgeries) }, 30*time.Second, 50*time.Millisecond)
	reasons := quarantineReasons(t, p.es)
	for key, prefix := range map[string]string{
		"huge-seq":      "sequence number out of range",
		"mint-forged":   "unsigned",
		"mint-forged-2": "claims another registry",
		nextKey:         "bad signature: ",
		"stray":         "unknown signing key",
		"cut":           "bad signature header",
		"":              "malformed",
	} {
		require.True(t, strings.HasPrefix(reasons[key], prefix), "%s: %q", key, reasons[key])
	}
	for _, f := range forgeries {
		require.EqualValues(t, 1, testutil.ToFloat64(m.Quarantined.WithLabelValues(f.label)), f.label)
	}

	// The real events are all applied; the forgeries moved nothing.
	after := allBalances(t, p.es)
	require.Zero(t, after[mallory+" liquid"])
	before[alice+" liquid"] -= 1_000 + 20*100
	before[bob+" liquid"] += 990 + 20*99
	before["alpha-main/fee_collector liquid"] += 10 + 20*1
	require.Equal(t, before, after)
	requireAuditClean(t, p.es, 1_000_000, 1_000_000)
	var regs []string
	rows, err := p.es.Pool.Query(ctx, `SELECT registry FROM events WHERE idempotency_key = $1 ORDER BY registry`, nextKey)
	require.NoError(t, err)
	regs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"alpha-main", "alpha-op1"}, regs, "the real event is not a duplicate of another registry's")

	// Progress counts only what its source signed: alpha-main's sequence
	// is complete, alpha-op1's is 1 (the huge number was not tracked).
	progress, err := ingest.Progress(ctx, p.es.Pool)
	require.NoError(t, err)
	got := map[string][2]int64{}
	for _, sp := range progress {
		require.Zero(t, sp.Pending, "%+v", sp)
		got[sp.Registry] = [2]int64{sp.HWM, sp.MaxSeen}
	}
	require.Equal(t, map[string][2]int64{"alpha-main": {23, 23}, "alpha-op1": {1, 1}}, got)
}

// A record under a key the EventStore does not know yet makes it read the
// trust directory again before judging: a registry that just joined is
// accepted at once.
func TestAKeyPublishedAfterStartIsFoundOnItsFirstRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	es := testenv.NewDB(t, db.RoleEventStore)
	dir := t.TempDir()
	main, op1 := testKeys["alpha-main"], testKeys["alpha-op1"]
	require.NoError(t, ingest.PublishKey(dir, "alpha-main", main.Public().(ed25519.PublicKey)))
	var readings atomic.Int32
	source := ingest.DirectoryKeys(dir, []string{"alpha-main", "alpha-op1"})
	a, err := ingest.NewApplier(ctx, es.Pool, frame, nil, nil, nil, ingest.WithAuthentication(func() (events.TrustedKeys, error) {
		readings.Add(1)
		return source()
	}))
	require.NoError(t, err)
	require.EqualValues(t, 1, readings.Load())

	raw := forge(t, "alpha-op1", events.TypeTokensTransferred, "hello")
	rec := ingest.Record{Value: raw, SourceSeq: 1, Auth: signAs(t, op1, "alpha-op1", 1, raw)}
	time.Sleep(250 * time.Millisecond) // past the re-reading interval
	res, err := a.Apply(ctx, []ingest.Record{rec})
	require.NoError(t, err)
	require.Equal(t, 1, res.Quarantined, "not published yet")
	require.EqualValues(t, 2, readings.Load(), "the unknown key made it read the directory")

	require.NoError(t, ingest.PublishKey(dir, "alpha-op1", op1.Public().(ed25519.PublicKey)))
	time.Sleep(250 * time.Millisecond)
	res, err = a.Apply(ctx, []ingest.Record{rec})
	require.NoError(t, err)
	require.Equal(t, 1, res.Inserted)
	require.EqualValues(t, 3, readings.Load())
	// Known keys cost no reading.
	raw = forge(t, "alpha-main", events.TypeTokensTransferred, "hello")
	res, err = a.Apply(ctx, []ingest.Record{{Value: raw, SourceSeq: 1, Auth: signAs(t, main, "alpha-main", 1, raw)}})
	require.NoError(t, err)
	require.Equal(t, 1, res.Inserted)
	require.EqualValues(t, 3, readings.Load())
}

func TestTrustDirectoryKeepsRotatedKeysAndRefusesBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old, cur := testKeys["alpha-main"], testKeys["alpha-op1"]
	for _, k := range []ed25519.PrivateKey{old, cur, cur} {
		require.NoError(t, ingest.PublishKey(dir, "alpha-main", k.Public().(ed25519.PublicKey)))
	}
	keys, err := ingest.DirectoryKeys(dir, []string{"alpha-main", "alpha-op1"})()
	require.NoError(t, err)
	require.Equal(t, events.TrustedKeys{"alpha-main": {old.Public().(ed25519.PublicKey), cur.Public().(ed25519.PublicKey)}}, keys,
		"both keys, once each; no file, no key")
	// A registry outside the frame is not read even if its file is there.
	require.NoError(t, ingest.PublishKey(dir, "other", cur.Public().(ed25519.PublicKey)))
	keys, err = ingest.DirectoryKeys(dir, []string{"alpha-main"})()
	require.NoError(t, err)
	require.NotContains(t, keys, "other")

	for name, content := range map[string]string{
		"not PEM":     "hello",
		"private key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"trailing":    string(must(os.ReadFile(filepath.Join(dir, "alpha-main", ingest.TrustedKeyFile)))) + "junk",
		"not a key":   "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
		"empty":       "",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "alpha-main", ingest.TrustedKeyFile), []byte(content), 0o644))
		_, err := ingest.DirectoryKeys(dir, []string{"alpha-main"})()
		require.Error(t, err, name)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Sequence numbers a source's progress cannot track are quarantined, with
// or without authentication, and the rest of the batch applies: a number
// too far above the high-water mark, and one more waiting number than
// MaxPending allows.
func TestSequenceNumbersOutOfRangeAreQuarantined(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, authOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth=%v", authOn), func(t *testing.T) {
			es := testenv.NewDB(t, db.RoleEventStore)
			// alpha-main/teg already has MaxPending numbers waiting above
			// its mark (2 .. MaxPending+1; 1 is missing).
			bits := make([]byte, (ingest.MaxPending+1+7)/8+1)
			for i := 1; i <= ingest.MaxPending; i++ {
				bits[i/8] |= 1 << (i % 8)
			}
			_, err := es.Pool.Exec(ctx, `INSERT INTO source_progress (registry, source, hwm, max_seen, pending_base, pending_bits, hwm_moved_at, updated_at)
				VALUES ('alpha-main', 'teg', 0, $1, 1, $2, now(), now())`, ingest.MaxPending+1, bits)
			require.NoError(t, err)
			var opts []ingest.ApplierOption
			if authOn {
				opts = append(opts, ingest.WithAuthentication(testTrust))
			}
			m := ingest.NewMetrics(nil)
			a, err := ingest.NewApplier(ctx, es.Pool, frame, m, nil, nil, opts...)
			require.NoError(t, err)
			rec := func(registry, key string, seq int64) ingest.Record {
				return ingest.Record{Value: forge(t, registry, events.TypeTokensTransferred, key), SourceSeq: seq}
			}
			recs := []ingest.Record{
				rec("alpha-op1", "op1-1", 1),
				rec("alpha-op1", "op1-far", 1+ingest.MaxPendingSpan), // its mark is 0: too far
				rec("alpha-op1", "op1-2", 2),
				rec("alpha-main", "main-too-many", ingest.MaxPending+5), // one waiting number too many
				rec("alpha-main", "main-1", 1),                          // fills the gap: everything up to MaxPending+1 arrived
			}
			if authOn {
				recs = signRecords(t, recs, nil)
			}
			res, err := a.Apply(ctx, recs)
			require.NoError(t, err, "the batch applies")
			require.Equal(t, 3, res.Inserted)
			require.Equal(t, 2, res.Quarantined)
			reasons := quarantineReasons(t, es)
			require.Contains(t, reasons["op1-far"], "sequence number out of range")
			require.Contains(t, reasons["main-too-many"], "sequence number out of range")
			require.EqualValues(t, 2, testutil.ToFloat64(m.Quarantined.WithLabelValues("seq_out_of_range")))
			progress, err := ingest.Progress(ctx, es.Pool)
			require.NoError(t, err)
			got := map[string][2]int64{}
			for _, sp := range progress {
				got[sp.Registry] = [2]int64{sp.HWM, sp.MaxSeen}
			}
			require.Equal(t, map[string][2]int64{"alpha-main": {ingest.MaxPending + 1, ingest.MaxPending + 1}, "alpha-op1": {2, 2}}, got,
				"the refused numbers were not tracked")
			// Now in range, the same record applies.
			res, err = a.Apply(ctx, recs[3:4])
			require.NoError(t, err)
			require.Equal(t, 1, res.Inserted)
		})
	}
}

// The same idempotency key from two registries is two events; from one
// registry, one.
func TestDedupKeysArePerRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	es := testenv.NewDB(t, db.RoleEventStore)
	a, err := ingest.NewApplier(ctx, es.Pool, frame, nil, nil, nil, ingest.WithAuthentication(testTrust))
	require.NoError(t, err)
	pay := []events.Posting{{Account: "did:theprotocol:a", Bucket: "liquid", Delta: -1}, {Account: "did:theprotocol:b", Bucket: "liquid", Delta: 1}}
	recs := signRecords(t, []ingest.Record{
		{Value: forge(t, "alpha-main", events.TypeTokensTransferred, "k", pay...), SourceSeq: 1},
		{Value: forge(t, "alpha-op1", events.TypeTokensTransferred, "k", pay...), SourceSeq: 1},
	}, nil)
	res, err := a.Apply(ctx, recs)
	require.NoError(t, err)
	require.Equal(t, 2, res.Inserted)
	// alpha-main's key again, under a new number, in the next batch: the
	// log already has it (a source reusing a key), so it is dropped.
	again := signRecords(t, []ingest.Record{{Value: forge(t, "alpha-main", events.TypeTokensTransferred, "k", pay...), SourceSeq: 2}}, nil)
	res, err = a.Apply(ctx, again)
	require.NoError(t, err)
	require.Equal(t, ingest.BatchResult{Received: 1, Duplicates: 1}, res)
	require.EqualValues(t, 2, balance(t, es, "did:theprotocol:b", "liquid"))
}
