package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest/internal/eventdb"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/recon"
)

// Reconciliation (docs/adr/0015): the reconciler folds each registry's TEG
// events in the TEG's own sequence order into recon_balances, and when it
// reaches a BalanceCheckpoint it compares what it has folded so far — the
// registry as of the checkpoint's covered sequence number — with what the
// checkpoint states. The frame-wide projection cannot answer that
// question: it applies events in arrival order, and Kafka partitions
// interleave a source's events, so later events are often already in it.
//
// The reconciler reads the event log (segments) and source progress, never
// the ingest transaction's data structures, and runs in its own
// transaction: ingest pays nothing for it.
//
// A pass, in one repeatable-read snapshot:
//
//  1. read the segments not yet read (and those holding events it could
//     not fold yet), keeping the TEG events that move money or that the
//     reconciliation reads (checkpoints, cross-registry legs); each body is
//     taken only from the place its event row points to, so every logged
//     event is seen once;
//  2. per registry, fold the events numbered up to its high-water mark
//     (every number up to it has arrived). When the mark has not moved for
//     the grace period while later numbers arrived, the numbers in between
//     are declared missing and the fold goes past them: the checkpoints
//     after the gap then report what the missing events carried. An event
//     that arrives after its number was passed is folded when it comes;
//  3. compare the newest checkpoint folded with the state at its covered
//     number, and record the differences (recon.Compare) per registry and
//     term, with when each was first seen;
//  4. net the transit accounts of every pair of registries against the
//     cross-registry decisions still in flight (recon.Net);
//  5. flag the differences that have outlasted the grace period: the
//     supply audit fails on those.

// reconLockKey is the advisory lock that makes reconciler passes one at a
// time across processes.
const reconLockKey = 0x7265_636f_6e63 // "reconc"

// Reconciler limits.
const (
	// reconProbeBatch is how many keys one lookup in the event log takes.
	reconProbeBatch = 5000
	// reconPage is the balances read per round trip when summarising a
	// registry.
	reconPage = 10_000
	// maxDeclaredMissing bounds the missing sequence numbers listed per
	// pass and registry (the count is kept in full).
	maxDeclaredMissing = 10_000
	// reconSegmentPage is the segments read per round trip.
	reconSegmentPage = 16
	// maxPassEvents bounds the events one pass keeps in memory (a first
	// pass over a long log is spread over several).
	maxPassEvents = 200_000
	// segmentCommitWindow is how long a segment id below one already read
	// may still be uncommitted (ids are drawn before a batch commits):
	// the scan keeps such ids in view for that long.
	segmentCommitWindow = time.Minute
)

// ReconcileOptions configure a Reconciler.
type ReconcileOptions struct {
	// Grace is how long a difference may last before the audit fails on
	// it (and how long a stuck high-water mark is waited for).
	Grace time.Duration
	// StaleAfter: the audit fails when no pass has completed for this long.
	StaleAfter time.Duration
	// CheckpointMaxAge: a registry whose TEG writes events but whose newest
	// checkpoint is older than this fails the audit.
	CheckpointMaxAge time.Duration
	// Every is the interval between passes (Run).
	Every time.Duration
	// AfterPass, when set, runs after each completed pass (the supply
	// invariant watch re-reads the audit there).
	AfterPass func(ctx context.Context)
	Metrics   *ReconMetrics
	Now       func() time.Time
	Log       *slog.Logger
}

// DefaultReconcileOptions are the settings when nothing is configured.
func DefaultReconcileOptions() ReconcileOptions {
	return ReconcileOptions{Grace: 2 * time.Minute, StaleAfter: 5 * time.Minute, CheckpointMaxAge: 10 * time.Minute, Every: 5 * time.Second}
}

// Reconciler runs reconciliation passes over one frame's EventStore.
type Reconciler struct {
	Frame string
	pool  *pgxpool.Pool
	store *db.Store
	q     *eventdb.Queries
	o     ReconcileOptions
}

// NewReconciler returns a reconciler of the EventStore database behind pool.
func NewReconciler(pool *pgxpool.Pool, frame string, o ReconcileOptions) *Reconciler {
	d := DefaultReconcileOptions()
	if o.Grace <= 0 {
		o.Grace = d.Grace
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = d.StaleAfter
	}
	if o.CheckpointMaxAge <= 0 {
		o.CheckpointMaxAge = d.CheckpointMaxAge
	}
	if o.Every <= 0 {
		o.Every = d.Every
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewReconMetrics(nil)
	}
	return &Reconciler{Frame: frame, pool: pool, store: db.NewStore(pool, "eventstore"), q: eventdb.New(), o: o}
}

// Run passes every o.Every until ctx ends; a failed pass is logged and
// counted, and the next one starts from where the last good one ended.
func (r *Reconciler) Run(ctx context.Context) error {
	t := time.NewTicker(r.o.Every)
	defer t.Stop()
	for {
		if _, err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			r.o.Log.Error("reconciliation pass", "frame", r.Frame, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// PassResult says what one pass did.
type PassResult struct {
	Skipped     bool // another pass held the lock
	Segments    int  // segments read
	Folded      int  // events folded
	Late        int  // of which arrived after their number was passed
	Evaluated   int  // checkpoints compared
	Differences int  // registry terms differing after the pass
	Failing     int  // of which past the grace period, plus failing pairs
}

// Pass runs one reconciliation pass (see the top of this file).
func (r *Reconciler) Pass(ctx context.Context) (PassResult, error) {
	start := time.Now()
	var res PassResult
	err := r.store.TxOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		res = PassResult{}
		locked, err := r.q.ReconLockTry(ctx, tx, reconLockKey)
		if err != nil {
			return err
		}
		if !locked {
			res.Skipped = true
			return nil
		}
		return r.pass(ctx, tx, &res)
	})
	if err != nil {
		r.o.Metrics.Failures.Inc()
		return res, err
	}
	if res.Skipped {
		return res, nil
	}
	r.o.Metrics.Passes.Inc()
	r.o.Metrics.PassSeconds.Observe(time.Since(start).Seconds())
	r.o.Metrics.Folded.Add(float64(res.Folded))
	if err := r.publishGauges(ctx); err != nil {
		r.o.Log.Warn("reconciliation gauges", "err", err)
	}
	if r.o.AfterPass != nil {
		r.o.AfterPass(ctx)
	}
	return res, nil
}

// foldItem is a TEG event the fold needs.
type foldItem struct {
	seq      int64
	segment  int64 // 0: a legacy row (json envelope)
	late     bool  // its number was passed before it arrived
	typ      string
	postings []events.Posting
	payload  json.RawMessage
}

// scanState is the segment scan's bookkeeping (recon_scan).
type scanState struct {
	from     int64
	done     map[int64]bool      // read, at or after from
	buffered []int64             // hold events not folded yet: read again
	gaps     map[int64]time.Time // ids below one read, not seen yet, since
}

func (r *Reconciler) pass(ctx context.Context, tx pgx.Tx, res *PassResult) error {
	now := r.o.Now().UTC().Truncate(time.Microsecond)
	scan := scanState{from: 1, done: map[int64]bool{}, gaps: map[int64]time.Time{}}
	first := false
	sr, err := r.q.ReconScanGet(ctx, tx)
	switch {
	case db.IsNotFound(err):
		first = true
	case err != nil:
		return err
	default:
		scan.from, scan.buffered = sr.ScanFrom, sr.BufferedIds
		for _, id := range sr.DoneIds {
			scan.done[id] = true
		}
		for i, id := range sr.GapIds {
			if i < len(sr.GapSeen) {
				scan.gaps[id] = sr.GapSeen[i]
			}
		}
	}
	srcRows, err := r.q.ReconSourcesList(ctx, tx)
	if err != nil {
		return err
	}
	sources := make(map[string]*eventdb.ReconSource, len(srcRows))
	for i := range srcRows {
		sources[srcRows[i].Registry] = &srcRows[i]
	}
	progRows, err := r.q.SourceProgressList(ctx, tx)
	if err != nil {
		return err
	}
	prog := map[string]*progress{}
	for _, p := range progRows {
		if p.Source == events.SourceTEG {
			prog[p.Registry] = loadProgress(p.Hwm, p.MaxSeen, p.PendingBase, p.PendingBits, p.Pending, p.HwmMovedAt)
		}
	}

	// 1. Read.
	items := map[string][]foldItem{}
	read := []int64{}
	buffered := map[int64]bool{} // segments holding events not folded yet
	skip := make([]int64, 0, len(scan.done))
	for id := range scan.done {
		skip = append(skip, id)
	}
	capped, err := scanSegments(ctx, tx, scan.from, skip, scan.buffered, maxPassEvents, func(seg segmentInfo, kept []keptEvent) error {
		read = append(read, seg.id)
		for _, k := range kept {
			st := sources[k.env.Registry]
			it := foldItem{seq: k.seq, segment: seg.id, typ: k.env.Type, postings: k.env.Postings, payload: k.env.Payload}
			if st != nil && it.seq <= st.FoldedSeq {
				if scan.done[seg.id] {
					continue // folded when the segment was first read
				}
				it.late = true
			}
			items[k.env.Registry] = append(items[k.env.Registry], it)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if first {
		if err := scanLegacy(ctx, tx, func(kept []keptEvent) {
			for _, k := range kept {
				items[k.env.Registry] = append(items[k.env.Registry], foldItem{seq: k.seq, typ: k.env.Type, postings: k.env.Postings, payload: k.env.Payload})
			}
		}); err != nil {
			return err
		}
	}
	res.Segments = len(read)

	// 2.–3. Fold, per registry, and compare checkpoints.
	prevDiffs, err := r.q.ReconDifferencesList(ctx, tx)
	if err != nil {
		return err
	}
	since := map[[2]string]time.Time{}
	for _, d := range prevDiffs {
		since[[2]string{d.Registry, d.Term}] = d.Since
	}
	var legs legBatch
	regs := make([]string, 0, len(items))
	for reg := range items {
		regs = append(regs, reg)
	}
	slices.Sort(regs)
	for _, reg := range regs {
		st := sources[reg]
		if st == nil {
			st = &eventdb.ReconSource{Registry: reg, FirstFoldedAt: now}
			sources[reg] = st
		}
		segs, err := r.foldRegistry(ctx, tx, st, prog[reg], items[reg], !capped, since, &legs, now, res)
		if err != nil {
			return fmt.Errorf("registry %s: %w", reg, err)
		}
		for _, s := range segs {
			buffered[s] = true
		}
	}
	// Registries with nothing new still age: a checkpoint can go overdue.
	all := make([]string, 0, len(sources))
	for reg := range sources {
		all = append(all, reg)
	}
	slices.Sort(all)
	for _, reg := range all {
		if err := r.checkOverdue(ctx, tx, sources[reg], now); err != nil {
			return err
		}
	}
	if err := legs.write(ctx, tx, r.q, now); err != nil {
		return err
	}

	// 4. Netting.
	if err := r.net(ctx, tx, all, now); err != nil {
		return err
	}

	// 5. Failing flags, counts.
	if err := r.q.ReconDifferencesSetFailing(ctx, tx, now.Add(-r.o.Grace)); err != nil {
		return err
	}
	diffs, err := r.q.ReconDifferencesList(ctx, tx)
	if err != nil {
		return err
	}
	res.Differences = len(diffs)
	for _, d := range diffs {
		if d.Failing {
			res.Failing++
		}
	}
	nets, err := r.q.NettingList(ctx, tx)
	if err != nil {
		return err
	}
	for _, n := range nets {
		if n.Failing {
			res.Failing++
		}
	}

	// Scan bookkeeping. Known: every segment read so far at or after
	// scan_from. An id missing below the highest known may belong to a
	// batch still committing: it stays in view for segmentCommitWindow
	// (then it was rolled back). The next pass starts at the oldest segment
	// holding an event not folded yet, or at the oldest gap in view.
	known := map[int64]bool{}
	top := scan.from - 1
	for id := range scan.done {
		known[id], top = true, max(top, id)
	}
	for _, id := range read {
		known[id], top = true, max(top, id)
	}
	next := top + 1
	var gapIDs []int64
	var gapSeen []time.Time
	for id := scan.from; id < top; id++ {
		if known[id] {
			continue
		}
		seenAt, ok := scan.gaps[id]
		if !ok {
			seenAt = now
		}
		if now.Sub(seenAt) < segmentCommitWindow {
			gapIDs, gapSeen = append(gapIDs, id), append(gapSeen, seenAt)
			next = min(next, id)
		}
	}
	bufIDs := []int64{}
	for id := range buffered {
		bufIDs = append(bufIDs, id)
		next = min(next, id)
	}
	slices.Sort(bufIDs)
	done := []int64{}
	for id := range known {
		if id >= next {
			done = append(done, id)
		}
	}
	slices.Sort(done)
	if gapIDs == nil {
		gapIDs, gapSeen = []int64{}, []time.Time{}
	}
	return r.q.ReconScanPut(ctx, tx, eventdb.ReconScanPutParams{
		ScanFrom: next, DoneIds: done, BufferedIds: bufIDs, GapIds: gapIDs, GapSeen: gapSeen,
		PassedAt: now, StaleAfterSeconds: r.o.StaleAfter.Seconds(),
	})
}

// foldRegistry folds one registry's new items (see the top of this file)
// and returns the segments holding items it could not fold yet.
//
// Every number the fold passes without having seen its event in the log
// is recorded missing (a gap given up on, a quarantined event, one lost
// from the log); an event that arrives later under such a number is
// folded then. One arriving under a number already folded is not folded
// again: it is a second copy of an event the fold has (one deleted from
// the log and delivered again).
//
// A pass that stopped reading early (full) folds only as far as it has
// seen every number, declares nothing missing and compares no
// checkpoint (a later one supersedes it).
func (r *Reconciler) foldRegistry(ctx context.Context, tx pgx.Tx, st *eventdb.ReconSource, p *progress, items []foldItem, full bool,
	since map[[2]string]time.Time, legs *legBatch, now time.Time, res *PassResult) ([]int64, error) {
	reg := st.Registry
	target := st.FoldedSeq
	if p != nil {
		target = max(target, p.hwm)
		if p.maxSeen > p.hwm && now.Sub(p.hwmMovedAt) >= r.o.Grace {
			target = max(target, p.maxSeen)
		}
	}
	slices.SortFunc(items, func(a, b foldItem) int { return cmp.Compare(a.seq, b.seq) })
	seen := map[int64]bool{}
	var lateSeqs []int64
	for _, it := range items {
		if it.late {
			lateSeqs = append(lateSeqs, it.seq)
		} else {
			seen[it.seq] = true
		}
	}
	if !full {
		s := st.FoldedSeq + 1
		for s <= target && seen[s] {
			s++
		}
		target = s - 1
	}
	// Late arrivals: only those whose number was given up on are new to
	// the fold.
	welcome := map[int64]bool{}
	if len(lateSeqs) > 0 {
		back, err := r.q.ReconMissingRemove(ctx, tx, eventdb.ReconMissingRemoveParams{Registry: reg, Seqs: lateSeqs})
		if err != nil {
			return nil, err
		}
		for _, s := range back {
			welcome[s] = true
		}
		st.MissingCount = max(0, st.MissingCount-int64(len(back)))
		if n := len(lateSeqs) - len(back); n > 0 {
			r.o.Log.Warn("reconciliation: events delivered again under numbers already folded; not folded twice", "registry", reg, "events", n)
		}
	}
	var fold, later []foldItem
	var buffered []int64
	for _, it := range items {
		switch {
		case it.late:
			if welcome[it.seq] {
				fold = append(fold, it)
				res.Late++
			}
		case it.seq <= target:
			fold = append(fold, it)
		default:
			later = append(later, it)
			if it.segment > 0 {
				buffered = append(buffered, it.segment)
			}
		}
	}
	// Numbers passed without their event.
	if full && target > st.FoldedSeq {
		var missing []int64
		var count int64
		for s := st.FoldedSeq + 1; s <= target; s++ {
			if !seen[s] {
				count++
				if len(missing) < maxDeclaredMissing {
					missing = append(missing, s)
				}
			}
		}
		if count > 0 {
			r.o.Log.Warn("reconciliation: folding past sequence numbers whose events are not in the log", "registry", reg, "missing", count, "first", missing[0])
			if err := r.q.ReconMissingAdd(ctx, tx, eventdb.ReconMissingAddParams{Registry: reg, Seqs: missing, Now: now}); err != nil {
				return nil, err
			}
			st.MissingCount += count
		}
	}
	// The newest checkpoint folded now; its state is the fold up to its
	// covered number.
	var cp *events.BalanceCheckpoint
	var cpSeq int64
	for _, it := range fold {
		if !full || it.late || it.typ != events.TypeBalanceCheckpoint {
			continue
		}
		var c events.BalanceCheckpoint
		if err := json.Unmarshal(it.payload, &c); err != nil || c.CoversSeq >= it.seq || c.CoversSeq < st.FoldedSeq {
			r.o.Log.Warn("reconciliation: ignoring a malformed checkpoint", "registry", reg, "seq", it.seq, "err", err)
			continue
		}
		cp, cpSeq = &c, it.seq
	}
	before, after := fold, []foldItem(nil)
	if cp != nil {
		// Late items are numbered at most FoldedSeq ≤ CoversSeq: all before.
		i, _ := slices.BinarySearchFunc(fold, cp.CoversSeq+1, func(it foldItem, s int64) int { return cmp.Compare(it.seq, s) })
		before, after = fold[:i], fold[i:]
	}
	if err := r.applyFold(ctx, tx, reg, before, legs); err != nil {
		return nil, err
	}
	if cp != nil {
		if err := r.evaluate(ctx, tx, st, cp, cpSeq, append(slices.Clone(after), later...), since, now); err != nil {
			return nil, err
		}
		res.Evaluated++
	}
	if err := r.applyFold(ctx, tx, reg, after, legs); err != nil {
		return nil, err
	}
	res.Folded += len(fold)
	st.FoldedSeq = max(st.FoldedSeq, target)
	if err := r.q.ReconSourcePut(ctx, tx, eventdb.ReconSourcePutParams{
		Registry: reg, FoldedSeq: st.FoldedSeq, FirstFoldedAt: st.FirstFoldedAt, CheckpointSeq: st.CheckpointSeq,
		CoversSeq: st.CoversSeq, CheckpointTakenAt: st.CheckpointTakenAt, EvaluatedAt: st.EvaluatedAt,
		Expected: st.Expected, Projected: st.Projected, MissingCount: st.MissingCount,
	}); err != nil {
		return nil, err
	}
	return buffered, nil
}

// applyFold adds items' postings to the registry's folded balances and
// records their cross-registry legs.
func (r *Reconciler) applyFold(ctx context.Context, tx pgx.Tx, reg string, items []foldItem, legs *legBatch) error {
	if len(items) == 0 {
		return nil
	}
	deltas := newBalanceDeltas(0)
	for _, it := range items {
		for _, p := range it.postings {
			if err := deltas.add(balanceKey{p.Account, p.Bucket}, p.Delta); err != nil {
				return err
			}
		}
		switch it.typ {
		case events.TypeCrossRegistryDebited, events.TypeCrossRegistryCredited:
			legs.add(reg, it)
		}
	}
	p := eventdb.ReconBalancesAddParams{}
	for _, i := range deltas.sorted() {
		if d := deltas.deltas[i]; d != 0 {
			k := deltas.keys[i]
			p.Registries, p.Accounts, p.Buckets, p.Deltas = append(p.Registries, reg), append(p.Accounts, k.account), append(p.Buckets, k.bucket), append(p.Deltas, d)
		}
	}
	if len(p.Deltas) == 0 {
		return nil
	}
	return r.q.ReconBalancesAdd(ctx, tx, p)
}

// evaluate compares the registry as of the checkpoint's covered number
// with the checkpoint, twice, and records the differences, keeping when
// each was first seen:
//
//   - the fold (recon_balances, now exactly at the covered number): what
//     the event log holds of the registry;
//   - the frame-wide projection the API and the audit serve, taken back
//     to the covered number by subtracting the registry's later events
//     (later: every event of the registry numbered after it that this
//     pass read, i.e. every one in the log) — terms "projection:…". It
//     catches a projection that lost or gained what the log did not
//     (an event deleted from both after the fold had it).
func (r *Reconciler) evaluate(ctx context.Context, tx pgx.Tx, st *eventdb.ReconSource, cp *events.BalanceCheckpoint, cpSeq int64, later []foldItem,
	since map[[2]string]time.Time, now time.Time) error {
	reg := st.Registry
	folded, err := r.summarize(ctx, tx, reg)
	if err != nil {
		return err
	}
	diffs, err := recon.Compare(cp.Summary, folded)
	if err != nil {
		return err
	}
	projected, err := r.projectionAt(ctx, tx, reg, later)
	if err != nil {
		return err
	}
	pdiffs, err := recon.Compare(cp.Summary, projected)
	if err != nil {
		return err
	}
	for _, d := range pdiffs {
		d.Term = ProjectionTermPrefix + d.Term
		diffs = append(diffs, d)
	}
	exp, _ := json.Marshal(cp.Summary)
	proj, _ := json.Marshal(folded)
	taken := cp.TakenAt.UTC()
	st.CheckpointSeq, st.CoversSeq, st.CheckpointTakenAt, st.EvaluatedAt = &cpSeq, &cp.CoversSeq, &taken, &now
	st.Expected, st.Projected = exp, proj
	if err := r.q.ReconDifferencesClear(ctx, tx, reg); err != nil {
		return err
	}
	for _, d := range diffs {
		s := recon.Since(since[[2]string{reg, d.Term}], true, now)
		if err := r.q.ReconDifferencePut(ctx, tx, eventdb.ReconDifferencePutParams{
			Registry: reg, Term: d.Term, ExpectedUnits: d.Expected, ProjectedUnits: d.Projected, DeltaUnits: d.Delta,
			CheckpointSeq: cpSeq, CoversSeq: cp.CoversSeq, Since: s, Failing: recon.Persisting(s, now, r.o.Grace),
		}); err != nil {
			return err
		}
	}
	if len(diffs) > 0 {
		r.o.Log.Warn("reconciliation: the EventStore differs from the registry's checkpoint", "registry", reg,
			"checkpoint_seq", cpSeq, "covers_seq", cp.CoversSeq, "differences", len(diffs), "first_term", diffs[0].Term, "first_delta", diffs[0].Delta)
	}
	return nil
}

// ProjectionTermPrefix marks the terms on which the frame-wide projection
// (rather than the event log) differs from a checkpoint.
const ProjectionTermPrefix = "projection:"

// projectionAt is the frame-wide projection's view of the registry's
// accounts less the postings of later (the registry's events numbered
// after the checkpoint's covered number).
func (r *Reconciler) projectionAt(ctx context.Context, tx pgx.Tx, reg string, later []foldItem) (recon.Summary, error) {
	rows, err := r.q.ReconProjectionOfRegistry(ctx, tx, reg)
	if err != nil {
		return recon.Summary{}, err
	}
	vals := make(map[balanceKey]int64, len(rows))
	for _, row := range rows {
		vals[balanceKey{row.Account, row.Bucket}] = row.Balance
	}
	sub := map[balanceKey]int64{}
	for _, it := range later {
		for _, p := range it.postings {
			k := balanceKey{p.Account, p.Bucket}
			if sub[k], err = money.Add(sub[k], p.Delta); err != nil {
				return recon.Summary{}, err
			}
		}
	}
	var get eventdb.ProjectionBalancesGetParams
	local := map[balanceKey]balanceKey{} // qualified → as the registry names it
	for k := range sub {
		if _, ok := vals[k]; !ok {
			q := balanceKey{Qualify(reg, k.account), k.bucket}
			local[q] = k
			get.Accounts, get.Buckets = append(get.Accounts, q.account), append(get.Buckets, q.bucket)
			vals[k] = 0
		}
	}
	if len(get.Accounts) > 0 {
		found, err := r.q.ProjectionBalancesGet(ctx, tx, get)
		if err != nil {
			return recon.Summary{}, err
		}
		for _, f := range found {
			vals[local[balanceKey{f.Account, f.Bucket}]] = f.Balance
		}
	}
	out := make([]recon.Balance, 0, len(vals))
	for k, v := range vals {
		if v, err = money.Sub(v, sub[k]); err != nil {
			return recon.Summary{}, err
		}
		out = append(out, recon.Balance{Account: k.account, Bucket: k.bucket, Units: v})
	}
	return recon.Summarize(out)
}

// summarize reads the registry's folded balances into a summary.
func (r *Reconciler) summarize(ctx context.Context, tx pgx.Tx, reg string) (recon.Summary, error) {
	return summarizePages(func(afterAccount, afterBucket string) ([]recon.Balance, error) {
		rows, err := r.q.ReconBalancesPage(ctx, tx, eventdb.ReconBalancesPageParams{
			Registry: reg, AfterAccount: afterAccount, AfterBucket: afterBucket, MaxRows: reconPage,
		})
		out := make([]recon.Balance, len(rows))
		for i, row := range rows {
			out[i] = recon.Balance{Account: row.Account, Bucket: row.Bucket, Units: row.Balance}
		}
		return out, err
	})
}

func summarizePages(page func(afterAccount, afterBucket string) ([]recon.Balance, error)) (recon.Summary, error) {
	sz := recon.NewSummarizer()
	var a, b string
	for {
		rows, err := page(a, b)
		if err != nil {
			return recon.Summary{}, err
		}
		for _, row := range rows {
			if err := sz.Add(row); err != nil {
				return recon.Summary{}, err
			}
		}
		if len(rows) < reconPage {
			return sz.Summary(), nil
		}
		a, b = rows[len(rows)-1].Account, rows[len(rows)-1].Bucket
	}
}

// TermCheckpointOverdue is the reconciliation term of a registry whose
// newest checkpoint is too old (or that never wrote one): its balances
// are not being reconciled.
const TermCheckpointOverdue = "checkpoint_overdue"

func (r *Reconciler) checkOverdue(ctx context.Context, tx pgx.Tx, st *eventdb.ReconSource, now time.Time) error {
	reg := st.Registry
	last := st.FirstFoldedAt
	if st.CheckpointTakenAt != nil {
		last = *st.CheckpointTakenAt
	}
	if err := r.q.ReconDifferenceDelete(ctx, tx, eventdb.ReconDifferenceDeleteParams{Registry: reg, Term: TermCheckpointOverdue}); err != nil {
		return err
	}
	if now.Sub(last) < r.o.CheckpointMaxAge {
		return nil
	}
	var cpSeq, covers int64
	if st.CheckpointSeq != nil {
		cpSeq, covers = *st.CheckpointSeq, *st.CoversSeq
	}
	return r.q.ReconDifferencePut(ctx, tx, eventdb.ReconDifferencePutParams{
		Registry: reg, Term: TermCheckpointOverdue, CheckpointSeq: cpSeq, CoversSeq: covers,
		Since: last.Add(r.o.CheckpointMaxAge), Failing: true,
	})
}

// net recomputes the transit netting of every pair of registries.
func (r *Reconciler) net(ctx context.Context, tx pgx.Tx, registries []string, now time.Time) error {
	var transit []recon.Transit
	for _, reg := range registries {
		rows, err := r.q.ReconTransitBalances(ctx, tx, reg)
		if err != nil {
			return err
		}
		for _, row := range rows {
			if peer := recon.TransitPeer(row.Account); peer != "" && isNative(row.Bucket) {
				transit = append(transit, recon.Transit{Registry: reg, Peer: peer, Units: row.Balance})
			}
		}
	}
	if err := r.q.ReconLegsPruneSettled(ctx, tx); err != nil {
		return err
	}
	legRows, err := r.q.ReconLegsList(ctx, tx)
	if err != nil {
		return err
	}
	legs := make([]recon.Leg, len(legRows))
	for i, l := range legRows {
		legs[i] = recon.Leg{Source: l.SourceRegistry, Target: l.TargetRegistry}
		if l.DebitUnits != nil {
			legs[i].Debited, legs[i].DebitUnits = true, *l.DebitUnits
		}
		if l.CreditUnits != nil {
			legs[i].Credited, legs[i].CreditUnits = true, *l.CreditUnits
		}
	}
	pairs, err := recon.Net(transit, legs)
	if err != nil {
		return err
	}
	prev, err := r.q.NettingList(ctx, tx)
	if err != nil {
		return err
	}
	prevSince := map[[2]string]time.Time{}
	for _, p := range prev {
		if p.Since != nil {
			prevSince[[2]string{p.RegistryA, p.RegistryB}] = *p.Since
		}
	}
	for _, p := range pairs {
		s := recon.Since(prevSince[[2]string{p.A, p.B}], p.Delta != 0, now)
		var sp *time.Time
		if !s.IsZero() {
			sp = &s
		}
		if err := r.q.NettingPut(ctx, tx, eventdb.NettingPutParams{
			RegistryA: p.A, RegistryB: p.B, TransitUnits: p.TransitUnits, InFlightUnits: p.InFlightUnits, DeltaUnits: p.Delta,
			Since: sp, Failing: recon.Persisting(s, now, r.o.Grace), EvaluatedAt: now,
		}); err != nil {
			return err
		}
	}
	return nil
}

// legBatch collects the cross-registry legs of a pass.
type legBatch struct {
	debits, credits eventdb.ReconLegsDebitParams
}

// xferLeg is what the reconciliation reads of a leg's payload.
type xferLeg struct {
	TransferID     uuid.UUID `json:"transfer_id"`
	AmountUnits    int64     `json:"amount_units"`
	SourceRegistry string    `json:"source_registry"`
	TargetRegistry string    `json:"target_registry"`
}

// add records it, a leg emitted by registry reg. The emitting registry
// is the side it speaks for (a debit's source, a credit's target),
// whatever its payload claims.
func (b *legBatch) add(reg string, it foldItem) {
	var l xferLeg
	if json.Unmarshal(it.payload, &l) != nil || l.TransferID == uuid.Nil {
		return
	}
	if it.typ == events.TypeCrossRegistryDebited {
		b.debits.Ids, b.debits.Sources, b.debits.Targets, b.debits.Units = append(b.debits.Ids, l.TransferID), append(b.debits.Sources, reg), append(b.debits.Targets, l.TargetRegistry), append(b.debits.Units, l.AmountUnits)
		return
	}
	b.credits.Ids, b.credits.Sources, b.credits.Targets, b.credits.Units = append(b.credits.Ids, l.TransferID), append(b.credits.Sources, l.SourceRegistry), append(b.credits.Targets, reg), append(b.credits.Units, l.AmountUnits)
}

func (b *legBatch) write(ctx context.Context, tx pgx.Tx, q *eventdb.Queries, now time.Time) error {
	for _, p := range []*eventdb.ReconLegsDebitParams{&b.debits, &b.credits} {
		// One row per transfer and statement (ON CONFLICT cannot touch a
		// row twice): the last leg of a transfer wins, as a re-read would.
		seen := map[uuid.UUID]int{}
		var d eventdb.ReconLegsDebitParams
		for i, id := range p.Ids {
			if j, ok := seen[id]; ok {
				d.Sources[j], d.Targets[j], d.Units[j] = p.Sources[i], p.Targets[i], p.Units[i]
				continue
			}
			seen[id] = len(d.Ids)
			d.Ids, d.Sources, d.Targets, d.Units = append(d.Ids, id), append(d.Sources, p.Sources[i]), append(d.Targets, p.Targets[i]), append(d.Units, p.Units[i])
		}
		if len(d.Ids) == 0 {
			continue
		}
		d.Now = now
		var err error
		if p == &b.debits {
			err = q.ReconLegsDebit(ctx, tx, d)
		} else {
			err = q.ReconLegsCredit(ctx, tx, eventdb.ReconLegsCreditParams(d))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// --- reading the log -------------------------------------------------------

type segmentInfo struct{ id int64 }

// keptEvent is a TEG event the reconciliation needs, with its number.
type keptEvent struct {
	env events.Envelope
	seq int64
}

// reconNeeds reports whether the reconciliation reads env.
func reconNeeds(env *events.Envelope) bool {
	if env.Source != events.SourceTEG {
		return false
	}
	switch env.Type {
	case events.TypeBalanceCheckpoint, events.TypeCrossRegistryDebited, events.TypeCrossRegistryCredited:
		return true
	}
	return len(env.Postings) > 0
}

// scanSegments reads the segments from id from on, in id order, a page at
// a time, and calls fn with each one's TEG events, numbered from their
// event rows (the bodies of those the reconciliation does not read are
// dropped). A body whose key's row points
// elsewhere (a repeat that was not marked skipped) is dropped. It stops
// after the segment that brings the events kept to maxEvents or more
// (capped true): the next pass goes on from there.
//
// Segments in skip are passed over unless also in again.
func scanSegments(ctx context.Context, tx pgx.Tx, from int64, skip, again []int64, maxEvents int, fn func(segmentInfo, []keptEvent) error) (capped bool, err error) {
	type segment struct {
		info    segmentInfo
		codec   string
		n       int32
		skipped []int32
		data    []byte
	}
	q := eventdb.New()
	dec := events.NewDecoder()
	total := 0
	for {
		// A page of segments is read before their keys are looked up: the
		// lookups need the connection a row stream would hold.
		rows, err := tx.Query(ctx, `SELECT id, codec, events, skipped, data FROM event_segments
			WHERE id >= $1 AND (id <> ALL($2::bigint[]) OR id = ANY($3::bigint[])) ORDER BY id LIMIT $4`, from, skip, again, reconSegmentPage)
		if err != nil {
			return false, fmt.Errorf("read segments: %w", err)
		}
		var segs []segment
		for rows.Next() {
			var s segment
			if err := rows.Scan(&s.info.id, &s.codec, &s.n, &s.skipped, &s.data); err != nil {
				rows.Close()
				return false, fmt.Errorf("read segments: %w", err)
			}
			segs = append(segs, s)
		}
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("read segments: %w", err)
		}
		for _, s := range segs {
			kept, err := keptOfSegment(ctx, tx, q, dec, s.info.id, s.codec, s.data, int(s.n), s.skipped)
			if err != nil {
				return false, err
			}
			if err := fn(s.info, kept); err != nil {
				return false, err
			}
			total += len(kept)
			if total >= maxEvents {
				return true, nil
			}
		}
		if len(segs) < reconSegmentPage {
			return false, nil
		}
		from = segs[len(segs)-1].info.id + 1
	}
}

// keptOfSegment decodes one segment and returns the TEG events the
// reconciliation needs, numbered from their event rows.
func keptOfSegment(ctx context.Context, tx pgx.Tx, q *eventdb.Queries, dec *events.Decoder, id int64, codec string, data []byte, n int, skipped []int32) ([]keptEvent, error) {
	bodies, err := decodeSegment(codec, data, n)
	if err != nil {
		return nil, fmt.Errorf("segment %d: %w", id, err)
	}
	skip := make([]bool, len(bodies))
	for _, p := range skipped {
		if p >= 0 && int(p) < len(skip) {
			skip[p] = true
		}
	}
	var cand []keptEvent
	var pos []int32
	for i, b := range bodies {
		if skip[i] {
			continue
		}
		var env events.Envelope
		if err := decodeEnvelope(dec, b, &env); err != nil {
			return nil, fmt.Errorf("segment %d: undecodable body %d: %w", id, i, err)
		}
		if env.Source != events.SourceTEG {
			continue
		}
		if !reconNeeds(&env) {
			// Its number counts (the fold must see every one); its body
			// does not.
			env = events.Envelope{IdempotencyKey: env.IdempotencyKey, Type: env.Type, Registry: env.Registry, Source: env.Source}
		}
		cand, pos = append(cand, keptEvent{env: env}), append(pos, int32(i))
	}
	var kept []keptEvent
	for lo := 0; lo < len(cand); lo += reconProbeBatch {
		hi := min(lo+reconProbeBatch, len(cand))
		p := eventdb.ReconEventsByKeysParams{Registries: make([]string, 0, hi-lo), Keys: make([]string, 0, hi-lo)}
		for _, c := range cand[lo:hi] {
			p.Registries, p.Keys = append(p.Registries, c.env.Registry), append(p.Keys, c.env.IdempotencyKey)
		}
		found, err := q.ReconEventsByKeys(ctx, tx, p)
		if err != nil {
			return nil, fmt.Errorf("segment %d: look up events: %w", id, err)
		}
		byKey := make(map[string]eventdb.ReconEventsByKeysRow, len(found))
		for _, f := range found {
			byKey[dedupKey(&events.Envelope{Registry: f.Registry, IdempotencyKey: f.IdempotencyKey})] = f
		}
		for i, c := range cand[lo:hi] {
			f, ok := byKey[dedupKey(&c.env)]
			if !ok || f.SegmentID != id || f.SegmentPos != pos[lo+i] || f.Registry != c.env.Registry || f.Source != c.env.Source {
				continue
			}
			c.seq = f.SourceSeq
			kept = append(kept, c)
		}
	}
	return kept, nil
}

// scanLegacy reads the TEG events stored before segments existed.
func scanLegacy(ctx context.Context, tx pgx.Tx, fn func([]keptEvent)) error {
	rows, err := tx.Query(ctx, `SELECT envelope::text, source_seq FROM events WHERE envelope IS NOT NULL AND source = $1`, events.SourceTEG)
	if err != nil {
		return fmt.Errorf("read legacy events: %w", err)
	}
	defer rows.Close()
	dec := events.NewDecoder()
	var kept []keptEvent
	for rows.Next() {
		var body string
		var seq int64
		if err := rows.Scan(&body, &seq); err != nil {
			return fmt.Errorf("read legacy events: %w", err)
		}
		var env events.Envelope
		if err := decodeEnvelope(dec, []byte(body), &env); err != nil {
			return fmt.Errorf("legacy event: %w", err)
		}
		if !reconNeeds(&env) {
			env = events.Envelope{Type: env.Type, Registry: env.Registry, Source: env.Source}
		}
		kept = append(kept, keptEvent{env: env, seq: seq})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fn(kept)
	return nil
}
