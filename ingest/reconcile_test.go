package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/recon"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// simTEG stands in for a registry's TEG: it numbers its events as the
// relay would and keeps the balances its events imply, so its checkpoints
// state what a real TEG would.
type simTEG struct {
	t        *testing.T
	registry string
	seq      int64
	balances map[[2]string]int64
	now      func() time.Time
}

func newSimTEG(t *testing.T, registry string, now func() time.Time) *simTEG {
	return &simTEG{t: t, registry: registry, balances: map[[2]string]int64{}, now: now}
}

// event returns the next numbered event; its postings move the TEG's
// balances whether or not the EventStore ever gets it.
func (s *simTEG) event(typ, key string, payload any, postings ...events.Posting) ingest.Record {
	s.t.Helper()
	env, err := events.New(typ, key, s.registry, s.now())
	require.NoError(s.t, err)
	env.Frame, env.Registry, env.Source = frame, s.registry, events.SourceTEG
	env.Postings = postings
	if payload != nil {
		env.Payload, err = json.Marshal(payload)
		require.NoError(s.t, err)
	}
	for _, p := range postings {
		s.balances[[2]string{p.Account, p.Bucket}] += p.Delta
	}
	raw, err := json.Marshal(env)
	require.NoError(s.t, err)
	s.seq++
	return ingest.Record{Value: raw, SourceSeq: s.seq}
}

func (s *simTEG) mint(amount int64) ingest.Record {
	return s.event(events.TypeTokensIssued, fmt.Sprintf("%s-mint-%d", s.registry, s.seq+1), nil,
		events.Posting{Account: "issuance", Bucket: "liquid", Delta: -amount}, events.Posting{Account: "treasury", Bucket: "liquid", Delta: amount})
}

func (s *simTEG) move(from, to string, amount int64) ingest.Record {
	return s.event(events.TypeTokensTransferred, fmt.Sprintf("%s-xfer-%d", s.registry, s.seq+1), nil,
		events.Posting{Account: from, Bucket: "liquid", Delta: -amount}, events.Posting{Account: to, Bucket: "liquid", Delta: amount})
}

// checkpoint is the TEG's checkpoint of everything it numbered so far.
func (s *simTEG) checkpoint() ingest.Record {
	s.t.Helper()
	var rows []recon.Balance
	for k, v := range s.balances {
		rows = append(rows, recon.Balance{Account: k[0], Bucket: k[1], Units: v})
	}
	sum, err := recon.Summarize(rows)
	require.NoError(s.t, err)
	covers := s.seq
	return s.event(events.TypeBalanceCheckpoint, events.BalanceCheckpointKey(s.registry, covers), events.BalanceCheckpoint{CoversSeq: covers, TakenAt: s.now(), Summary: sum})
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type reconEnv struct {
	t     *testing.T
	ctx   context.Context
	es    testenv.DB
	a     *ingest.Applier
	r     *ingest.Reconciler
	clock *testClock
}

func newReconEnv(t *testing.T) *reconEnv {
	t.Helper()
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	es := testenv.NewDB(t, db.RoleEventStore)
	a, err := ingest.NewApplier(context.Background(), es.Pool, frame, nil, nil, clock.Now)
	require.NoError(t, err)
	r := ingest.NewReconciler(es.Pool, frame, ingest.ReconcileOptions{
		Grace: time.Minute, StaleAfter: time.Hour, CheckpointMaxAge: time.Hour, Now: clock.Now,
	})
	return &reconEnv{t: t, ctx: context.Background(), es: es, a: a, r: r, clock: clock}
}

func (e *reconEnv) apply(recs ...ingest.Record) {
	e.t.Helper()
	_, err := e.a.Apply(e.ctx, recs)
	require.NoError(e.t, err)
}

func (e *reconEnv) pass() ingest.PassResult {
	e.t.Helper()
	res, err := e.r.Pass(e.ctx)
	require.NoError(e.t, err)
	require.False(e.t, res.Skipped)
	return res
}

func (e *reconEnv) report() ingest.ReconciliationReport {
	e.t.Helper()
	rep, err := ingest.Reconciliation(e.ctx, e.es.Pool, frame)
	require.NoError(e.t, err)
	return rep
}

func (e *reconEnv) registry(reg string) ingest.RegistryReconciliation {
	e.t.Helper()
	for _, r := range e.report().Registries {
		if r.Registry == reg {
			return r
		}
	}
	e.t.Fatalf("registry %s not reconciled", reg)
	return ingest.RegistryReconciliation{}
}

const (
	alice = "did:theprotocol:00000000-0000-7000-8000-00000000000a"
	bob   = "did:theprotocol:00000000-0000-7000-8000-00000000000b"
)

// Checkpoints are compared with the registry as of the number they cover,
// whatever order the events arrive in: events numbered after a checkpoint
// that arrive before it, and a checkpoint that arrives before the events
// it covers, change nothing.
func TestReconcileOutOfOrder(t *testing.T) {
	e := newReconEnv(t)
	teg := newSimTEG(t, "r1", e.clock.Now)
	e.apply(teg.mint(1000), teg.move("treasury", alice, 300))
	cp1 := teg.checkpoint()
	after := teg.move(alice, bob, 100) // numbered after the checkpoint…
	e.apply(after, cp1)                // …and ingested with it
	res := e.pass()
	require.Equal(t, 1, res.Evaluated)
	r1 := e.registry("r1")
	require.Empty(t, r1.Differences, "%+v", r1)
	require.EqualValues(t, 2, *r1.CoversSeq)
	require.Equal(t, r1.Checkpoint, r1.Projected)

	// A checkpoint ahead of an event it covers waits for it.
	missing := teg.move(bob, alice, 40)
	cp2 := teg.checkpoint()
	e.apply(cp2)
	res = e.pass()
	require.Zero(t, res.Evaluated, "event 5 has not arrived: nothing to compare yet")
	e.apply(missing)
	res = e.pass()
	require.Equal(t, 1, res.Evaluated)
	r1 = e.registry("r1")
	require.Empty(t, r1.Differences)
	require.EqualValues(t, 6, *r1.CheckpointSeq)
	require.EqualValues(t, 6, r1.FoldedSeq)

	audit, err := ingest.Audit(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.True(t, audit.OK, "%+v", audit)
	require.Empty(t, audit.Failures)
}

// An event the registry wrote that the EventStore never gets: once the
// source's high-water mark has been stuck past the grace period, the fold
// goes past the gap and the next checkpoint reports what it carried; the
// difference fails the audit once it has lasted the grace period too, and
// clears when the event finally arrives and a later checkpoint agrees.
func TestReconcileMissingEvent(t *testing.T) {
	e := newReconEnv(t)
	teg := newSimTEG(t, "r1", e.clock.Now)
	e.apply(teg.mint(1000), teg.move("treasury", alice, 300), teg.checkpoint())
	e.pass()
	lost := teg.move("treasury", "dev:acme", 250)
	e.apply(teg.move(alice, bob, 10), teg.checkpoint())
	res := e.pass()
	require.Zero(t, res.Evaluated)

	e.clock.Add(61 * time.Second) // the gap outlasts the grace period
	res = e.pass()
	require.Equal(t, 1, res.Evaluated)
	r1 := e.registry("r1")
	require.EqualValues(t, 1, r1.MissingSeqs)
	require.Equal(t, []int64{4}, r1.MissingSample)
	terms := map[string]int64{}
	for _, d := range r1.Differences {
		terms[d.Term] = d.Delta
		require.False(t, d.Failing, "new differences are within their grace period")
	}
	require.Equal(t, int64(250), terms["liquid/system"], "treasury still has the 250 in the EventStore's view")
	require.Equal(t, int64(-250), terms["liquid/developer"])
	require.Equal(t, int64(-250), terms["projection:liquid/developer"], "the projection lacks it as well")
	require.Equal(t, int64(500), r1.DeltaUnits)
	audit, err := ingest.Audit(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.True(t, audit.OK, "within the grace period the audit still passes: %+v", audit)

	e.clock.Add(61 * time.Second)
	e.pass()
	audit, err = ingest.Audit(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.False(t, audit.OK)
	require.Zero(t, audit.Delta, "the supply terms alone cannot see it")
	require.NotEmpty(t, audit.Failures)
	require.Contains(t, fmt.Sprint(audit.Failures), "registry r1: liquid/developer differs by -0.0000025")
	v := audit.Verdict()
	require.False(t, v.Clean())

	// The replay pinpoints it: the projections agree with the log, the log
	// does not agree with the registry, and number 4 is absent from it.
	rr, err := ingest.Replay(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.Empty(t, rr.BalanceMismatches)
	require.False(t, rr.OK)
	require.Len(t, rr.Registries, 1)
	require.Equal(t, []int64{4}, rr.Registries[0].MissingSeqs)
	require.Contains(t, rr.Registries[0].Differences, recon.Difference{Term: "liquid/developer", Expected: 250, Projected: 0, Delta: -250})

	// Repaired: the event arrives; the next checkpoint agrees.
	e.apply(lost)
	res = e.pass()
	require.Equal(t, 1, res.Late)
	require.Zero(t, e.registry("r1").MissingSeqs)
	e.apply(teg.checkpoint())
	e.pass()
	r1 = e.registry("r1")
	require.Empty(t, r1.Differences, "%+v", r1)
	audit, err = ingest.Audit(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.True(t, audit.OK, "%+v", audit)
	rr, err = ingest.Replay(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.True(t, rr.OK, "%+v", rr)
	require.Empty(t, rr.Registries[0].MissingSeqs)
}

// Transit netting: a credit with no matching decision shows on its pair;
// honest transfers in flight and settled do not.
func TestReconcileTransitNetting(t *testing.T) {
	e := newReconEnv(t)
	a, b := newSimTEG(t, "ra", e.clock.Now), newSimTEG(t, "rb", e.clock.Now)
	e.apply(a.mint(1000), a.move("treasury", alice, 500))
	leg := func(teg *simTEG, typ string, id uuid.UUID, source, target string, amount int64, postings ...events.Posting) ingest.Record {
		suffix := "-debit"
		if typ == events.TypeCrossRegistryCredited {
			suffix = "-credit"
		}
		return teg.event(typ, "xfer-"+id.String()+suffix, map[string]any{
			"transfer_id": id, "amount_units": amount, "source_registry": source, "target_registry": target,
		}, postings...)
	}
	settled, inFlight, forged := uuid.New(), uuid.New(), uuid.New()
	e.apply(
		leg(a, events.TypeCrossRegistryDebited, settled, "ra", "rb", 100,
			events.Posting{Account: alice, Bucket: "liquid", Delta: -100}, events.Posting{Account: "transit:rb", Bucket: "liquid", Delta: 100}),
		leg(b, events.TypeCrossRegistryCredited, settled, "ra", "rb", 100,
			events.Posting{Account: "transit:ra", Bucket: "liquid", Delta: -100}, events.Posting{Account: bob, Bucket: "liquid", Delta: 100}),
		leg(a, events.TypeCrossRegistryDebited, inFlight, "ra", "rb", 30,
			events.Posting{Account: alice, Bucket: "liquid", Delta: -30}, events.Posting{Account: "transit:rb", Bucket: "liquid", Delta: 30}),
	)
	e.pass()
	nets := e.report().Netting
	require.Len(t, nets, 1)
	require.Equal(t, recon.PairNetting{A: "ra", B: "rb", TransitUnits: 30, InFlightUnits: 30}, nets[0].PairNetting)

	// rb credits 70 from ra that ra never decided.
	e.apply(leg(b, events.TypeCrossRegistryCredited, forged, "ra", "rb", 70,
		events.Posting{Account: "transit:ra", Bucket: "liquid", Delta: -70}, events.Posting{Account: bob, Bucket: "liquid", Delta: 70}))
	e.pass()
	nets = e.report().Netting
	require.Equal(t, recon.PairNetting{A: "ra", B: "rb", TransitUnits: -40, InFlightUnits: 30, Delta: -70}, nets[0].PairNetting)
	require.False(t, nets[0].Failing)
	e.clock.Add(2 * time.Minute)
	e.pass()
	rep := e.report()
	require.True(t, rep.Netting[0].Failing)
	require.Contains(t, fmt.Sprint(rep.Failures), "registries ra and rb: transit nets to -0.0000004 while 0.0000003 is in flight between them (delta -0.0000007")
	audit, err := ingest.Audit(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.False(t, audit.OK)
}

// The audit does not read a silent reconciler as a clean one.
func TestReconcileStaleOrAbsentFailsTheAudit(t *testing.T) {
	e := newReconEnv(t)
	audit, err := ingest.Audit(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.False(t, audit.OK)
	require.Equal(t, []string{"reconciliation has not run yet"}, audit.Failures)
	e.pass()
	audit, err = ingest.Audit(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.True(t, audit.OK, "%+v", audit)
	_, err = e.es.Pool.Exec(e.ctx, `UPDATE recon_scan SET passed_at = passed_at - interval '2 hours'`)
	require.NoError(t, err)
	audit, err = ingest.Audit(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.False(t, audit.OK)
	require.Contains(t, audit.Failures[0], "reconciliation last ran at")

	// A registry writing events but no checkpoint goes overdue.
	teg := newSimTEG(t, "r9", e.clock.Now)
	e.apply(teg.mint(5))
	e.pass()
	e.clock.Add(61 * time.Minute)
	e.pass()
	rep := e.report()
	require.Contains(t, fmt.Sprint(rep.Failures), "registry r9: no balance checkpoint since never")
	e.apply(teg.checkpoint())
	e.pass()
	require.Empty(t, e.report().Failures)
}

// deleteApplied removes an applied event from the EventStore as if it had
// never arrived: its log row (its body marked skipped in its segment), its
// postings from the projection and its count from the audit row.
func deleteApplied(t *testing.T, es testenv.DB, rec ingest.Record) {
	t.Helper()
	ctx := context.Background()
	var env events.Envelope
	require.NoError(t, json.Unmarshal(rec.Value, &env))
	tx, err := es.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	tag, err := tx.Exec(ctx, `WITH e AS (DELETE FROM events WHERE idempotency_key = $1 RETURNING segment_id, segment_pos)
		UPDATE event_segments AS s SET skipped = array_append(s.skipped, e.segment_pos) FROM e WHERE s.id = e.segment_id`, env.IdempotencyKey)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	for _, p := range env.Postings {
		_, err := tx.Exec(ctx, `UPDATE projection_balances SET balance = balance - $3 WHERE account = $1 AND bucket = $2`,
			ingest.Qualify(env.Registry, p.Account), p.Bucket, p.Delta)
		require.NoError(t, err)
	}
	_, err = tx.Exec(ctx, `UPDATE supply_audit SET events_applied = events_applied - 1`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
}

// An event deleted from the EventStore after the reconciler folded it:
// the log's fold still has it, but the projection no longer does, and the
// next checkpoint says so; the replay finds its number absent from the
// log. Delivered again, it is applied once and folded once: the next
// checkpoint agrees.
func TestReconcileEventDeletedFromTheEventStore(t *testing.T) {
	e := newReconEnv(t)
	teg := newSimTEG(t, "r1", e.clock.Now)
	mint := teg.mint(1000)
	victim := teg.move("treasury", "dev:acme", 100)
	e.apply(mint, victim, teg.checkpoint())
	e.pass()
	require.Empty(t, e.registry("r1").Differences)

	deleteApplied(t, e.es, victim)
	e.apply(teg.move("treasury", alice, 5), teg.checkpoint())
	e.pass()
	terms := map[string]int64{}
	for _, d := range e.registry("r1").Differences {
		terms[d.Term] = d.Delta
	}
	require.Equal(t, map[string]int64{"projection:digest": 0, "projection:accounts": -1,
		"projection:liquid/developer": -100, "projection:liquid/system": 100}, terms)
	rr, err := ingest.Replay(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.Empty(t, rr.BalanceMismatches, "log and projections agree with each other")
	require.False(t, rr.OK)
	require.Equal(t, []int64{2}, rr.Registries[0].MissingSeqs, "the victim's number")
	e.clock.Add(61 * time.Second)
	e.pass()
	audit, err := ingest.Audit(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.False(t, audit.OK)

	// Delivered again (a relay re-publishing it).
	e.apply(victim)
	res := e.pass()
	require.Zero(t, res.Late, "the fold had it: not folded twice")
	e.apply(teg.checkpoint())
	e.pass()
	require.Empty(t, e.registry("r1").Differences)
	audit, err = ingest.Audit(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.True(t, audit.OK, "%+v", audit)
	rr, err = ingest.Replay(e.ctx, e.es.Pool, frame)
	require.NoError(t, err)
	require.True(t, rr.OK, "%+v", rr)
}

// Segment ids are drawn before their batch commits, so a lower id can
// appear after a higher one was read: the scan keeps such a gap in view
// (and lets it go once it is old: an id whose batch rolled back).
func TestReconcileSegmentCommittedOutOfIdOrder(t *testing.T) {
	e := newReconEnv(t)
	teg := newSimTEG(t, "r1", e.clock.Now)
	e.apply(teg.mint(1000))
	var gap int64
	require.NoError(t, e.es.Pool.QueryRow(e.ctx, `SELECT nextval('event_segments_id_seq')`).Scan(&gap))
	e.apply(teg.move("treasury", alice, 10)) // segment gap+1
	e.pass()

	// The batch that drew the gap's id commits now, with a checkpoint.
	e.apply(teg.move("treasury", bob, 20), teg.checkpoint())
	var newest int64
	require.NoError(t, e.es.Pool.QueryRow(e.ctx, `SELECT max(id) FROM event_segments`).Scan(&newest))
	_, err := e.es.Pool.Exec(e.ctx, `UPDATE event_segments SET id = $1 WHERE id = $2`, gap, newest)
	require.NoError(t, err)
	_, err = e.es.Pool.Exec(e.ctx, `UPDATE events SET segment_id = $1 WHERE segment_id = $2`, gap, newest)
	require.NoError(t, err)
	res := e.pass()
	require.Equal(t, 1, res.Evaluated, "the late segment was read")
	require.Empty(t, e.registry("r1").Differences)

	// A gap nobody fills is let go after the window.
	require.NoError(t, e.es.Pool.QueryRow(e.ctx, `SELECT nextval('event_segments_id_seq')`).Scan(&gap))
	e.apply(teg.move(alice, bob, 1))
	e.pass()
	var from int64
	require.NoError(t, e.es.Pool.QueryRow(e.ctx, `SELECT scan_from FROM recon_scan`).Scan(&from))
	require.LessOrEqual(t, from, gap, "kept in view (with the id the test renumbered away above)")
	e.clock.Add(2 * time.Minute)
	e.pass()
	require.NoError(t, e.es.Pool.QueryRow(e.ctx, `SELECT scan_from FROM recon_scan`).Scan(&from))
	require.Greater(t, from, gap+1, "given up")
}
