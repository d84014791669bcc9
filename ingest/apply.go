package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest/internal/eventdb"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/recon"
)

// Batch sizes of one ingest transaction. Bigger batches net more postings
// into each projection row update (the balance updates are the largest
// cost per batch), so a consumer with a backlog catches up faster; a
// consumer keeping up polls small batches, so latency does not suffer.
const (
	DefaultBatch = 20_000
	MaxBatch     = 50_000
)

// maxQuarantineLogs bounds the quarantined events logged per batch.
const maxQuarantineLogs = 10

// Record is one received event: the envelope as published, the source
// sequence number the relay assigned and the relay's signature
// (events.HeaderAuth), both Kafka headers.
type Record struct {
	Value     []byte
	SourceSeq int64
	Auth      []byte
}

// BatchResult counts what one batch did.
type BatchResult struct {
	Received    int
	Inserted    int
	Duplicates  int
	Quarantined int
	NewestEvent time.Time
}

// Applier writes batches into the EventStore database. It is the single
// writer of the projections: run exactly one per frame.
type Applier struct {
	Frame string
	pool  *pgxpool.Pool
	// store runs each batch's transaction, one attempt only: the
	// projection lock is held from inside the transaction through its
	// commit, so a retry would write the event log again under that lock,
	// and the consumer already redelivers a batch that failed.
	store  *db.Store
	q      *eventdb.Queries
	policy *db.Policy
	// policyGen counts policy reloads; a batch prepared under an older
	// generation is checked again before it is applied.
	policyGen atomic.Uint64
	// projMu makes the projection phase of a batch's transaction, through
	// its commit, one batch at a time; progMu guards progress, which that
	// phase replaces after the commit and other batches read.
	projMu   sync.Mutex
	progMu   sync.RWMutex
	progress map[sourceKey]*progress
	// flight lists the batches being written, oldest first (see claimKeys).
	flightMu sync.Mutex
	flight   []*flightBatch
	now      func() time.Time
	m        *Metrics
	log      *slog.Logger
	// Source authentication (nil keys: off, every record is taken as
	// from the registry it names).
	auth applierAuth
}

// ApplierOption configures an Applier.
type ApplierOption func(*Applier)

// WithAuthentication makes the Applier accept a record only when it was
// signed by a key keys trusts for the registry the record names
// (docs/adr/0016); any other record is quarantined. The keys are read at
// start, by ReloadKeys, and when a record names a key not yet known.
func WithAuthentication(keys KeySource) ApplierOption {
	return func(a *Applier) { a.auth.keys = keys }
}

// NewApplier loads the emission policy and per-source progress (and the
// trusted keys, WithAuthentication).
func NewApplier(ctx context.Context, pool *pgxpool.Pool, frame string, m *Metrics, log *slog.Logger, now func() time.Time, opts ...ApplierOption) (*Applier, error) {
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	a := &Applier{Frame: frame, pool: pool, store: db.NewStore(pool, "eventstore"), q: eventdb.New(), progress: map[sourceKey]*progress{}, now: now, m: m, log: log}
	a.store.MaxAttempts = 1
	for _, o := range opts {
		o(a)
	}
	if a.auth.keys != nil {
		if err := a.ReloadKeys(); err != nil {
			return nil, err
		}
	}
	var err error
	if a.policy, err = db.LoadPolicy(ctx, pool); err != nil {
		return nil, err
	}
	rows, err := a.q.SourceProgressList(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("load source progress: %w", err)
	}
	for _, r := range rows {
		a.progress[sourceKey{r.Registry, r.Source}] = loadProgress(r.Hwm, r.MaxSeen, r.PendingBase, r.PendingBits, r.Pending, r.HwmMovedAt)
	}
	if err := a.refreshAuditGauge(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// ReloadPolicy re-reads the emission policy table.
func (a *Applier) ReloadPolicy(ctx context.Context) error {
	if err := a.policy.Reload(ctx, a.pool); err != nil {
		return err
	}
	a.policyGen.Add(1)
	return nil
}

// recheck re-evaluates decoded items against the current policy (decoding
// errors, missing sequence numbers and failed authentication stand).
func (a *Applier) recheck(items []decoded) {
	for i := range items {
		d := &items[i]
		if d.final || strings.HasPrefix(d.reason, "malformed") || d.seq <= 0 {
			continue
		}
		d.reason = a.check(d.env)
	}
}

type decoded struct {
	env    events.Envelope
	raw    []byte
	seq    int64
	reason string // non-empty: quarantine
	// final: the reason does not depend on the emission policy.
	final bool
	// unattributed: nothing shows the record comes from the source it
	// names (undecodable, unauthenticated, or a sequence number out of
	// range): it moves no source progress.
	unattributed bool
	// dk is the deduplication key: the idempotency key within the
	// registry that emitted it (see dedupKey), set by prepareSegment.
	dk string
}

// dedupKey is the registry and the idempotency key, NUL-separated: keys
// are unique per registry, so no registry can take another's (check
// refuses NUL in both).
func dedupKey(env *events.Envelope) string {
	return env.Registry + "\x00" + env.IdempotencyKey
}

// check returns why env must be quarantined, or "".
func (a *Applier) check(env events.Envelope) string {
	if err := env.Validate(); err != nil {
		return "invalid: " + err.Error()
	}
	if env.Frame != a.Frame {
		return fmt.Sprintf("foreign frame %q", env.Frame)
	}
	if err := a.policy.Check(env.Source, env.Type); err != nil {
		return err.Error()
	}
	// The log's text columns are written by binary COPY: text Postgres
	// would refuse must be quarantined here, or the batch could never
	// commit.
	for _, f := range [...]string{env.IdempotencyKey, env.Type, env.Frame, env.Registry, env.Source, env.Subject} {
		if !utf8.ValidString(f) || strings.IndexByte(f, 0) >= 0 {
			return "malformed: text field is not valid UTF-8 or contains NUL"
		}
	}
	// Per-currency sums: an event names one or two currencies, so a small
	// slice beats a map allocated per event.
	type sum struct {
		currency string
		total    int64
	}
	var buf [4]sum
	sums := buf[:0]
	for _, p := range env.Postings {
		if p.Account == "" || p.Bucket == "" {
			return "posting without account or bucket"
		}
		if p.Delta == math.MinInt64 {
			return "posting delta out of range"
		}
		cur := "native"
		if !isNative(p.Bucket) {
			cur = p.Bucket
		}
		k := 0
		for k < len(sums) && sums[k].currency != cur {
			k++
		}
		if k == len(sums) {
			sums = append(sums, sum{currency: cur})
		}
		s, err := money.Add(sums[k].total, p.Delta)
		if err != nil {
			return "posting overflow"
		}
		sums[k].total = s
	}
	for _, s := range sums {
		if s.total != 0 {
			return fmt.Sprintf("unbalanced postings: %s sums to %d", s.currency, s.total)
		}
	}
	return ""
}

// decodeEnvelope decodes one envelope: events.Decoder's fast path for the
// shape every component emits (a ledger-shaped 670-byte envelope in
// 1.3–2.4 µs here, 1.7–3× goccy/go-json and ~7× encoding/json in one
// window; decoding is the consumer's largest Go cost), then goccy/go-json, then
// encoding/json. Whether a record is malformed, and the reason quarantine
// records, is encoding/json's verdict.
func decodeEnvelope(dec *events.Decoder, raw []byte, env *events.Envelope) error {
	if dec.Decode(raw, env) {
		return nil
	}
	*env = events.Envelope{}
	if err := gojson.Unmarshal(raw, env); err == nil {
		return nil
	}
	*env = events.Envelope{}
	return json.Unmarshal(raw, env)
}

// decodeAll decodes, checks and (when the Applier does) authenticates
// records, spreading large batches over the available cores: JSON decoding
// is the Go side's main cost, hashing the envelopes for their signatures
// the next. Signatures are checked by group across the whole batch (each
// core takes the groups of a share of the signatures), so a group whose
// records came through several partitions is still checked together.
func (a *Applier) decodeAll(recs []Record) []decoded {
	items := make([]decoded, len(recs))
	workers := min(runtime.GOMAXPROCS(0), 8, len(recs)/256+1)
	parallel := func(n int, f func(w int)) {
		if n <= 1 {
			f(0)
			return
		}
		var wg sync.WaitGroup
		for w := range n {
			wg.Add(1)
			go func() { defer wg.Done(); f(w) }()
		}
		wg.Wait()
	}
	chunk := (len(recs) + workers - 1) / workers
	parallel(workers, func(w int) {
		dec := events.NewDecoder()
		for i := w * chunk; i < min((w+1)*chunk, len(recs)); i++ {
			r := recs[i]
			d := decoded{raw: r.Value, seq: r.SourceSeq}
			if err := decodeEnvelope(dec, r.Value, &d.env); err != nil {
				d.reason, d.final, d.unattributed = "malformed: "+err.Error(), true, true
			} else {
				if d.seq == 0 {
					d.seq = d.env.SourceSeq
				}
				if d.seq <= 0 {
					d.reason, d.final = "missing source sequence number", true
				} else {
					d.reason = a.check(d.env)
				}
			}
			items[i] = d
		}
	})
	v := a.auth.current()
	if v == nil {
		return items
	}
	var unknownKey atomic.Bool
	parallel(workers, func(w int) {
		if a.authenticate(v, recs, items, func(i int) bool { return authShard(recs[i].Auth, workers) == w }) {
			unknownKey.Store(true)
		}
	})
	if unknownKey.Load() {
		a.retryUnknownKeys(recs, items)
	}
	return items
}

// authShard spreads signature checks over n workers by group: the records
// of one group share their signature, a random value.
func authShard(header []byte, n int) int {
	if len(header) < 14 {
		return 0
	}
	return int(header[13]) % n
}

// authenticate checks the records mine selects (all attributable ones
// are checked, whatever their other faults: a record that cannot be shown
// to come from its source must not count for that source's progress),
// quarantines those whose signature does not show they come from the
// registry and source they name, and reports whether some came under a
// key not trusted (yet).
func (a *Applier) authenticate(v *events.Verifier, recs []Record, items []decoded, mine func(int) bool) (unknownKey bool) {
	auth := make([]events.AuthRecord, 0, len(items)/max(runtime.GOMAXPROCS(0), 1)+16)
	at := make([]int, 0, cap(auth))
	for i := range items {
		if d := &items[i]; !d.unattributed && d.seq > 0 && mine(i) {
			auth = append(auth, events.AuthRecord{Header: recs[i].Auth, Seq: d.seq, Envelope: recs[i].Value, Registry: d.env.Registry, Source: d.env.Source})
			at = append(at, i)
		}
	}
	for j, err := range v.VerifyBatch(auth) {
		if err != nil {
			d := &items[at[j]]
			d.reason, d.final, d.unattributed = authReason(err), true, true
			unknownKey = unknownKey || err.Reason == events.AuthUnknownKey
		}
	}
	return unknownKey
}

// retryUnknownKeys reads the trust directory again (at most every
// keyReloadEvery) when records came under a key not trusted yet — a
// registry that just started may have published its key since — and
// checks those records again.
func (a *Applier) retryUnknownKeys(recs []Record, items []decoded) {
	v := a.auth.refresh(a.log)
	again := map[int]bool{}
	for i := range items {
		if d := &items[i]; strings.HasPrefix(d.reason, unknownKeyReason) {
			d.reason, d.final, d.unattributed = a.check(d.env), false, false
			again[i] = true
		}
	}
	a.authenticate(v, recs, items, func(i int) bool { return again[i] })
}

const unknownKeyReason = "unknown signing key"

// authReason is the quarantine reason of a failed authentication; its
// prefix is the metric label (reasonLabel).
func authReason(err *events.AuthError) string {
	switch err.Reason {
	case events.AuthUnsigned:
		return "unsigned: " + err.Detail
	case events.AuthMalformed:
		return "bad signature header: " + err.Detail
	case events.AuthUnknownKey:
		return unknownKeyReason + ": " + err.Detail
	case events.AuthWrongRegistry:
		return "claims another registry: " + err.Detail
	default:
		return "bad signature: " + err.Detail
	}
}

func reasonLabel(reason string) string {
	switch {
	case strings.HasPrefix(reason, "emission policy: unknown"):
		return "unknown_type"
	case strings.HasPrefix(reason, "emission policy"):
		return "disallowed_source"
	case strings.HasPrefix(reason, "unbalanced"):
		return "unbalanced"
	case strings.HasPrefix(reason, "foreign frame"):
		return "foreign_frame"
	case strings.HasPrefix(reason, "unsigned"):
		return "unsigned"
	case strings.HasPrefix(reason, "bad signature header"):
		return "bad_signature_header"
	case strings.HasPrefix(reason, "bad signature"):
		return "bad_signature"
	case strings.HasPrefix(reason, "unknown signing key"):
		return "unknown_key"
	case strings.HasPrefix(reason, "claims another registry"):
		return "wrong_registry"
	case strings.HasPrefix(reason, "sequence number out of range"):
		return "seq_out_of_range"
	default:
		return "malformed"
	}
}

// Apply writes one batch in one transaction: new events into the log,
// their postings into the projections, refused ones into quarantine, and
// every record's sequence number into its source's progress. It returns
// only after the commit; the caller then commits Kafka offsets. On error
// nothing (in the database or in memory) has changed.
func (a *Applier) Apply(ctx context.Context, recs []Record) (BatchResult, error) {
	p, err := a.Prepare(recs)
	if err != nil {
		return BatchResult{}, err
	}
	return a.ApplyPrepared(ctx, p)
}

// Prepared is a decoded and checked batch, ready for ApplyPrepared.
// Preparing touches neither the database nor the Applier's progress, so the
// consumer prepares batch N+1 while batch N is being written.
type Prepared struct {
	items     []decoded
	plan      segmentPlan
	policyGen uint64
}

// Len is the number of records in the batch.
func (p *Prepared) Len() int { return len(p.items) }

// ChangesPolicy reports whether the batch carries an EmissionPolicyChanged
// event: the Applier reloads the policy when it has applied it, and
// batches after it should be prepared only then (the consumer waits).
func (p *Prepared) ChangesPolicy() bool {
	for i := range p.items {
		if p.items[i].reason == "" && p.items[i].env.Type == events.TypeEmissionPolicyChanged {
			return true
		}
	}
	return false
}

// Prepare decodes recs, authenticates them (WithAuthentication) and checks
// each against the envelope rules and the emission policy. It is safe to
// call concurrently with ApplyPrepared.
func (a *Applier) Prepare(recs []Record) (*Prepared, error) {
	if len(recs) > MaxBatch {
		return nil, fmt.Errorf("batch of %d records exceeds %d", len(recs), MaxBatch)
	}
	gen := a.policyGen.Load()
	p := &Prepared{items: a.decodeAll(recs), policyGen: gen}
	var err error
	if p.plan, err = prepareSegment(p.items); err != nil {
		return nil, err
	}
	return p, nil
}

// ApplyPrepared writes a prepared batch (see Apply). Two batches may be
// applied at once (the consumer keeps two in flight): each transaction
// first writes its events — the larger half of its work — concurrently
// with the other, then takes the Applier's projection lock and applies its
// postings, supply terms and source progress, and commits, holding the
// lock through the commit. The projections thus have one writer at a time,
// and each batch's events and projections still commit together.
// Postings and supply terms are sums, so the order in which two batches
// commit does not matter; source progress is merged under the lock.
func (a *Applier) ApplyPrepared(ctx context.Context, prep *Prepared) (BatchResult, error) {
	start := a.now()
	items := prep.items
	res := BatchResult{Received: len(items)}
	if prep.policyGen != a.policyGen.Load() {
		// The policy changed after the batch was checked (an earlier batch
		// carried EmissionPolicyChanged, or the periodic reload saw an
		// edit): check again so the batch is judged by the policy in force.
		a.recheck(items)
		var err error
		if prep.plan, err = prepareSegment(items); err != nil {
			return res, err
		}
	}
	if a.quarantineOutOfRange(items) {
		var err error
		if prep.plan, err = prepareSegment(items); err != nil {
			return res, err
		}
	}

	// An event whose sequence number its source's progress already holds
	// may be in the log (a redelivery): only those keys are probed.
	seenPos := make([]bool, len(items))
	a.progMu.RLock()
	var last sourceKey
	var p *progress
	for i := range items {
		d := &items[i]
		// Consecutive records mostly share a source: look it up on change.
		if k := (sourceKey{d.env.Registry, d.env.Source}); i == 0 || k != last {
			last, p = k, a.progress[k]
		}
		seenPos[i] = p != nil && (d.seq <= p.hwm || p.has(d.seq))
	}
	a.progMu.RUnlock()
	seen := func(i int) bool { return seenPos[i] }
	flying, release := a.claimKeys(items, prep.plan)
	defer release()
	inFlight := func(i int) bool { return flying[i] }

	applied, terms, err := a.applyOnce(ctx, items, prep.plan, start, seen, inFlight, false)
	if errors.Is(err, errKeyCollision) {
		a.log.Warn("an event key arrived again under a new sequence number; writing the batch again with every key probed", "events", len(items))
		a.m.KeyCollisions.Inc()
		applied, terms, err = a.applyOnce(ctx, items, prep.plan, start, seen, inFlight, true)
	}
	if err != nil {
		return res, err
	}
	policyChanged := false
	type sourceType struct{ source, typ string }
	ingested := map[sourceType]int{}
	logged := 0
	for _, d := range items {
		if d.reason != "" {
			res.Quarantined++
			a.m.Quarantined.WithLabelValues(reasonLabel(d.reason)).Inc()
			// Anyone writing to the topic can make records quarantined: a
			// few per batch are logged, the metric counts them all.
			if logged < maxQuarantineLogs {
				logged++
				a.log.Warn("event quarantined", "registry", d.env.Registry, "source", d.env.Source, "type", d.env.Type, "key", d.env.IdempotencyKey, "reason", d.reason)
			}
		}
	}
	if res.Quarantined > logged {
		a.log.Warn("more events quarantined in the batch", "not_logged", res.Quarantined-logged)
	}
	k := 0
	for pos, j := range applied.order {
		if k < len(applied.skipped) && applied.skipped[k] == int32(pos) {
			k++
			continue
		}
		e := &items[j].env
		res.Inserted++
		ingested[sourceType{e.Source, e.Type}]++
		if e.OccurredAt.After(res.NewestEvent) {
			res.NewestEvent = e.OccurredAt
		}
		if e.Type == events.TypeEmissionPolicyChanged {
			policyChanged = true
		}
	}
	for st, n := range ingested {
		a.m.Ingested.WithLabelValues(st.source, st.typ).Add(float64(n))
	}
	// Every other record repeated an event of the log or of the batch.
	res.Duplicates = res.Received - res.Quarantined - res.Inserted
	a.m.Duplicates.Add(float64(res.Duplicates))
	a.m.BatchSize.Observe(float64(len(items)))
	a.m.BatchSeconds.Observe(a.now().Sub(start).Seconds())
	if !res.NewestEvent.IsZero() {
		a.m.IngestLag.Set(a.now().Sub(res.NewestEvent).Seconds())
	}
	if terms != (auditTerms{}) {
		a.m.AuditDelta.WithLabelValues(a.Frame).Add(float64(terms.delta()))
	}
	if policyChanged {
		if err := a.ReloadPolicy(ctx); err != nil {
			a.log.Error("reload emission policy", "err", err)
		}
	}
	return res, nil
}

// claimKeys registers the keys of the batch's plan as being written, and
// reports (by index in items) those an earlier batch still in flight is
// writing: the batch skips them (see insertEvents). Without this, a record
// and its duplicate in two batches in flight collided in the primary key,
// and the later batch was written twice. release ends the claim; call it
// when the batch's transaction has ended.
//
// Plans list their keys sorted and unique, so each earlier batch is
// compared by one merge walk (a map of every key in flight cost 0.7 µs per
// event).
func (a *Applier) claimKeys(items []decoded, plan segmentPlan) (flying []bool, release func()) {
	mine := &flightBatch{keys: plan.keys}
	a.flightMu.Lock()
	earlier := append([]*flightBatch(nil), a.flight...)
	a.flight = append(a.flight, mine)
	a.flightMu.Unlock()
	flying = make([]bool, len(items))
	for _, e := range earlier {
		i, k := 0, 0
		for i < len(plan.keys) && k < len(e.keys) {
			switch c := strings.Compare(plan.keys[i], e.keys[k]); {
			case c < 0:
				i++
			case c > 0:
				k++
			default:
				flying[plan.order[i]] = true
				i++
				k++
			}
		}
	}
	return flying, func() {
		a.flightMu.Lock()
		defer a.flightMu.Unlock()
		for i, f := range a.flight {
			if f == mine {
				a.flight = append(a.flight[:i], a.flight[i+1:]...)
				return
			}
		}
	}
}

// flightBatch is a batch being written: its plan's keys (sorted).
type flightBatch struct{ keys []string }

// applyOnce runs the batch's transaction (see ApplyPrepared). On error
// nothing, in the database or in memory, has changed.
func (a *Applier) applyOnce(ctx context.Context, items []decoded, plan segmentPlan, start time.Time, seen, inFlight func(int) bool, probeAll bool) (applied segmentPlan, terms auditTerms, err error) {
	// The projection lock, taken in the transaction, is held through its
	// commit and the in-memory progress swap after it.
	locked := false
	defer func() {
		if locked {
			a.projMu.Unlock()
		}
	}()
	var current, touched map[sourceKey]*progress
	err = a.store.TxOpts(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var err error
		applied, terms, current, touched, err = a.writeBatch(ctx, tx, items, plan, start, seen, inFlight, probeAll, &locked)
		return err
	})
	if err != nil {
		return applied, terms, err
	}
	a.progMu.Lock()
	for k, p := range current {
		a.progress[k] = p // read in this transaction: at least as new
	}
	for k, p := range touched {
		a.progress[k] = p
	}
	a.progMu.Unlock()
	for k, p := range touched {
		a.m.SourceGap.WithLabelValues(k.registry, k.source).Set(float64(p.count))
	}
	return applied, terms, nil
}

// writeBatch is the body of a batch's transaction: the event log first,
// then, holding the projection lock (locked reports that it is held), the
// projections, supply audit, quarantine and source progress. It returns
// the progress to swap in once the transaction has committed.
func (a *Applier) writeBatch(ctx context.Context, tx pgx.Tx, items []decoded, plan segmentPlan, start time.Time, seen, inFlight func(int) bool, probeAll bool, locked *bool) (applied segmentPlan, terms auditTerms, current, touched map[sourceKey]*progress, err error) {
	// Phase 1, concurrent with the other batch in flight: the event log.
	if applied, err = insertEvents(ctx, tx, items, plan, start, seen, inFlight, probeAll); err != nil {
		return applied, terms, nil, nil, err
	}
	var deltas *balanceDeltas
	order := applied.balanceOrder
	if applied.deltas == nil {
		if deltas, terms, err = a.projectionDeltas(items, applied.inserted(items)); err != nil {
			return applied, terms, nil, nil, err
		}
		order = deltas.sorted()
	} else {
		deltas, terms = applied.deltas, applied.terms
	}

	// Phase 2, one batch at a time until its commit: the projections.
	if !*locked {
		a.projMu.Lock()
		*locked = true
	}
	// Another process's Applier (a consumer-group rebalance can briefly
	// run two) is kept out of the projections by the advisory lock.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, ingestLockKey); err != nil {
		return applied, terms, nil, nil, fmt.Errorf("ingest lock: %w", err)
	}
	// Progress changes are computed on copies and swapped in after commit,
	// starting from the stored progress where another Applier (a second
	// member of the consumer group, holding other partitions) wrote it
	// since: see progress.merged. One small read per batch; with a single
	// Applier the stored rows are what it wrote, and nothing is merged.
	stored, err := a.q.SourceProgressList(ctx, tx)
	if err != nil {
		return applied, terms, nil, nil, fmt.Errorf("read source progress: %w", err)
	}
	current = make(map[sourceKey]*progress, len(stored))
	for _, r := range stored {
		k := sourceKey{r.Registry, r.Source}
		cur, theirs := a.progress[k], loadProgress(r.Hwm, r.MaxSeen, r.PendingBase, r.PendingBits, r.Pending, r.HwmMovedAt)
		if cur == nil {
			current[k] = theirs
		} else if !cur.sameAs(theirs) {
			current[k] = cur.merged(theirs)
			a.m.ProgressMerges.Inc()
		}
	}
	touched = map[sourceKey]*progress{}
	for i := range items {
		d := &items[i]
		if !attributable(d) {
			continue
		}
		k := sourceKey{d.env.Registry, d.env.Source}
		p, ok := touched[k]
		if !ok {
			if cur := current[k]; cur != nil {
				p = cur // already a copy
			} else if cur := a.progress[k]; cur != nil {
				p = cur.clone()
			} else {
				p = newProgress(0, 0, start)
			}
			touched[k] = p
		}
		p.observe(d.seq, start)
		if p.count > MaxPending {
			return applied, terms, nil, nil, fmt.Errorf("source %s/%s has %d out-of-order events pending: refusing to track more", k.registry, k.source, p.count)
		}
		if p.overflow != 0 {
			return applied, terms, nil, nil, fmt.Errorf("source %s/%s sent sequence number %d, more than %d above its high-water mark %d: refusing to track it",
				k.registry, k.source, p.overflow, MaxPendingSpan, p.hwm)
		}
	}
	if err := deltas.apply(ctx, tx, a.q, order); err != nil {
		return applied, terms, nil, nil, err
	}
	if err := a.q.SupplyAuditApply(ctx, tx, eventdb.SupplyAuditApplyParams{
		Frame: a.Frame, Issued: terms.issued, Destroyed: terms.destroyed, TransitNet: terms.transitNet,
		Circulating: terms.circulating, Compensation: terms.compensation, Events: int64(len(applied.order) - len(applied.skipped)), Now: start,
	}); err != nil {
		return applied, terms, nil, nil, fmt.Errorf("supply audit: %w", err)
	}
	for _, d := range items {
		if d.reason == "" {
			continue
		}
		if err := a.q.QuarantineInsert(ctx, tx, eventdb.QuarantineInsertParams{
			IdempotencyKey: d.env.IdempotencyKey, EventType: d.env.Type, Registry: d.env.Registry,
			Source: d.env.Source, SourceSeq: d.seq, Reason: d.reason, Raw: d.raw, Now: start,
		}); err != nil {
			return applied, terms, nil, nil, fmt.Errorf("quarantine: %w", err)
		}
	}
	for k, p := range touched {
		if err := a.q.SourceProgressUpsert(ctx, tx, eventdb.SourceProgressUpsertParams{
			Registry: k.registry, Source: k.source, Hwm: p.hwm, MaxSeen: p.maxSeen,
			PendingBase: p.base, PendingBits: p.bitmap(), HwmMovedAt: p.hwmMovedAt, Now: start,
		}); err != nil {
			return applied, terms, nil, nil, fmt.Errorf("source progress: %w", err)
		}
	}
	return applied, terms, current, touched, nil
}

type auditTerms struct {
	issued, destroyed, transitNet, circulating int64
	// compensation is issuance by dispute rulings (its own term).
	compensation int64
}

func (t auditTerms) delta() int64 {
	return t.issued + t.compensation - t.destroyed + t.transitNet - t.circulating
}

// apply adds the non-zero deltas to the balance projection, in the order
// given (positions in key order, prepared off the transaction's critical
// path).
func (b *balanceDeltas) apply(ctx context.Context, tx pgx.Tx, q *eventdb.Queries, order []int32) error {
	p := eventdb.BalancesUpdateParams{Accounts: make([]string, 0, len(order)), Buckets: make([]string, 0, len(order)), Deltas: make([]int64, 0, len(order))}
	for _, i := range order {
		if d := b.deltas[i]; d != 0 {
			k := b.keys[i]
			p.Accounts, p.Buckets, p.Deltas = append(p.Accounts, k.account), append(p.Buckets, k.bucket), append(p.Deltas, d)
		}
	}
	if len(p.Deltas) == 0 {
		return nil
	}
	n, err := q.BalancesUpdate(ctx, tx, p)
	if err != nil {
		return fmt.Errorf("balances: %w", err)
	}
	if n == int64(len(p.Deltas)) {
		return nil
	}
	if err := q.BalancesInsertMissing(ctx, tx, eventdb.BalancesInsertMissingParams(p)); err != nil {
		return fmt.Errorf("balances of new accounts: %w", err)
	}
	return nil
}

// projectionDeltas nets the postings of the newly inserted events.
func (a *Applier) projectionDeltas(items []decoded, inserted map[string]bool) (*balanceDeltas, auditTerms, error) {
	deltas := newBalanceDeltas(0)
	var t auditTerms
	seen := map[string]bool{}
	for _, d := range items {
		k := d.dk
		if d.reason != "" || !inserted[k] || seen[k] {
			continue
		}
		seen[k] = true
		if err := accumulate(&d.env, deltas, &t, 1); err != nil {
			return nil, t, err
		}
	}
	return deltas, t, nil
}

// accumulate adds (sign 1) or takes back (sign -1) env's postings to the
// balances and audit terms. Ingest and replay both project through it, so
// they cannot disagree on how an event moves the projections.
func accumulate(env *events.Envelope, deltas *balanceDeltas, t *auditTerms, sign int64) error {
	add := func(dst *int64, v int64) error {
		s, err := money.Add(*dst, sign*v)
		if err != nil {
			return fmt.Errorf("projection overflow: %w", err)
		}
		*dst = s
		return nil
	}
	for _, p := range env.Postings {
		if p.Delta == math.MinInt64 {
			return fmt.Errorf("projection overflow: posting of %d", p.Delta)
		}
		if err := deltas.add(balanceKey{deltas.qualify(env.Registry, p.Account), p.Bucket}, sign*p.Delta); err != nil {
			return err
		}
		if !isNative(p.Bucket) {
			continue
		}
		var err error
		switch classify(p.Account) {
		case classIssuance:
			if p.Delta < 0 && env.Type == events.TypeDisputeCompensationMinted {
				err = add(&t.compensation, -p.Delta)
			} else if p.Delta < 0 {
				err = add(&t.issued, -p.Delta)
			} else {
				err = add(&t.destroyed, p.Delta)
			}
		case classCrossFrame:
			err = add(&t.transitNet, -p.Delta)
		default:
			err = add(&t.circulating, p.Delta)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// --- reads -----------------------------------------------------------------

// AuditReport is the supply audit with every term.
type AuditReport struct {
	Frame        string `json:"frame"`
	TokensIssued int64  `json:"tokens_issued"`
	// CompensationIssued is issuance minted as dispute compensation.
	CompensationIssued int64     `json:"compensation_issued"`
	TokensDestroyed    int64     `json:"tokens_destroyed"`
	TransitNet         int64     `json:"transit_net"`
	TotalCirculating   int64     `json:"total_circulating"`
	NetSupply          int64     `json:"net_supply"`
	Delta              int64     `json:"delta"`
	EventsApplied      int64     `json:"events_applied"`
	UpdatedAt          time.Time `json:"updated_at"`
	// Failures are the reconciliation and transit-netting differences that
	// outlasted their grace period, and a reconciler that stopped, each
	// naming its registry and term (reconcile.go).
	Failures []string `json:"failures"`
	// OK: Delta is 0 and there is no failure.
	OK bool `json:"ok"`
}

// Verdict is the report as the mint gate reads it.
func (r AuditReport) Verdict() recon.Verdict {
	return recon.Verdict{Delta: r.Delta, Failures: r.Failures}
}

// Audit reads the maintained audit row (one primary-key lookup) and the
// reconciliation's failures.
func Audit(ctx context.Context, q eventdb.DBTX, frame string) (AuditReport, error) {
	rep, err := supplyAudit(ctx, q, frame)
	if err != nil {
		return rep, err
	}
	if rep.Failures, err = reconFailures(ctx, q, frame, time.Now()); err != nil {
		return rep, err
	}
	rep.OK = rep.Delta == 0 && len(rep.Failures) == 0
	return rep, nil
}

// supplyAudit reads the audit row alone.
func supplyAudit(ctx context.Context, q eventdb.DBTX, frame string) (AuditReport, error) {
	r, err := eventdb.New().SupplyAuditGet(ctx, q, frame)
	if db.IsNotFound(err) {
		return AuditReport{Frame: frame, Failures: []string{}}, nil
	}
	if err != nil {
		return AuditReport{}, err
	}
	rep := AuditReport{
		Frame: frame, TokensIssued: r.TokensIssued, TokensDestroyed: r.TokensDestroyed, TransitNet: r.TransitNet,
		TotalCirculating: r.TotalCirculating, EventsApplied: r.EventsApplied, UpdatedAt: r.UpdatedAt, Failures: []string{},
		CompensationIssued: r.CompensationIssued,
	}
	rep.NetSupply = rep.TokensIssued + rep.CompensationIssued - rep.TokensDestroyed + rep.TransitNet
	rep.Delta = rep.NetSupply - rep.TotalCirculating
	return rep, nil
}

func (a *Applier) refreshAuditGauge(ctx context.Context) error {
	rep, err := supplyAudit(ctx, a.pool, a.Frame)
	if err != nil {
		return fmt.Errorf("read supply audit: %w", err)
	}
	a.m.AuditDelta.WithLabelValues(a.Frame).Set(float64(rep.Delta))
	return nil
}

// SourceProgress is what a relay needs to know about its source.
type SourceProgress struct {
	Registry   string    `json:"registry"`
	Source     string    `json:"source"`
	HWM        int64     `json:"hwm"`
	MaxSeen    int64     `json:"max_seen"`
	Pending    int       `json:"pending"`
	HWMMovedAt time.Time `json:"hwm_moved_at"`
}

// Progress lists every source's progress.
func Progress(ctx context.Context, q eventdb.DBTX) ([]SourceProgress, error) {
	rows, err := eventdb.New().SourceProgressList(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]SourceProgress, 0, len(rows))
	for _, r := range rows {
		out = append(out, SourceProgress{Registry: r.Registry, Source: r.Source, HWM: r.Hwm, MaxSeen: r.MaxSeen, Pending: pendingCount(r.PendingBits) + len(r.Pending), HWMMovedAt: r.HwmMovedAt})
	}
	return out, nil
}

// Balance is one bucket of an account's projected balance.
type Balance struct {
	Bucket  string `json:"bucket"`
	Balance int64  `json:"balance_units"`
}

// Balances lists account's projected balances, by bucket.
func Balances(ctx context.Context, q eventdb.DBTX, account string) ([]Balance, error) {
	rows, err := q.Query(ctx, `SELECT bucket, balance FROM projection_balances WHERE account = $1 ORDER BY bucket`, account)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Balance, error) {
		var b Balance
		return b, r.Scan(&b.Bucket, &b.Balance)
	})
}
