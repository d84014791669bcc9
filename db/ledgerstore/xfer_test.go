package ledgerstore_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// xferInvariants are the money invariants that hold on a TEG taking part
// in cross-registry transfers: every entry balances, balances equal the
// journal and the outbox's postings (what the EventStore sees), held units
// equal active holds, and only issuance and transit accounts may be
// negative.
func (e *env) xferInvariants() {
	t := e.t
	t.Helper()
	require.Zero(t, e.count(`SELECT count(*) FROM balances WHERE account_id <> 'issuance' AND account_id NOT LIKE 'transit:%' AND (units < 0 OR units < held_units)`))
	require.Zero(t, e.count(`SELECT count(*) FROM ledger_journal j WHERE (SELECT sum(d::numeric) FROM unnest(j.deltas) d) <> 0`))
	require.Zero(t, e.count(`
		WITH legs AS (
			SELECT u.account_id, u.bucket, sum(u.delta::numeric) AS total
			FROM ledger_journal j, unnest(j.accounts, j.buckets, j.deltas) AS u(account_id, bucket, delta)
			GROUP BY 1, 2)
		SELECT count(*) FROM balances b FULL JOIN legs l USING (account_id, bucket)
		WHERE coalesce(b.units, 0) <> coalesce(l.total, 0)`), "balances == Σ journal postings")
	require.Zero(t, e.count(`
		WITH ev AS (
			SELECT p->>'account' AS account_id, p->>'bucket' AS bucket, sum((p->>'delta')::numeric) AS total
			FROM outbox o, json_array_elements(coalesce(o.envelope->'postings', '[]'::json)) AS p
			GROUP BY 1, 2)
		SELECT count(*) FROM balances b FULL JOIN ev USING (account_id, bucket)
		WHERE coalesce(b.units, 0) <> coalesce(ev.total, 0)`), "balances == Σ event postings")
	require.Zero(t, e.count(`
		WITH active AS (SELECT account_id, sum(amount_units) AS held FROM holds WHERE status = 'active' GROUP BY 1)
		SELECT count(*) FROM balances b LEFT JOIN active a USING (account_id)
		WHERE b.bucket = 'liquid' AND b.held_units <> coalesce(a.held, 0)`), "held units == Σ active holds")
}

func TestCrossRegistryTransferLegsAreIdempotentAndBalanced(t *testing.T) {
	t.Parallel()
	src := newEnv(t, envOpts{})
	dst := newEnv(t, envOpts{notMainframe: true})
	alice := src.agent(100 * avt)
	bob := agentID()
	_, _, err := dst.store.OpenAccount(dst.ctx, bob, ledger.KindAgent)
	require.NoError(t, err)

	req := ledgerstore.XferRequest{From: alice, To: bob, Target: "alpha-op1", AmountUnits: 10 * avt, Memo: "hi", IdempotencyKey: "k1"}
	x, err := src.store.BeginXfer(src.ctx, req)
	require.NoError(t, err)
	require.Equal(t, xferstate.Pending, x.Status)
	units, held := src.balance(alice)
	require.Equal(t, 100*avt, units)
	require.Equal(t, 10*avt, held)

	// Retries replay; a reused key for another transfer is refused.
	again, err := src.store.BeginXfer(src.ctx, req)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, x.ID, again.ID)
	other := req
	other.AmountUnits = 11 * avt
	_, err = src.store.BeginXfer(src.ctx, other)
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err))

	// Bad input and short funds write nothing.
	snap := src.snapshot()
	for name, bad := range map[string]ledgerstore.XferRequest{
		"self":      {From: alice, To: alice, Target: "alpha-op1", AmountUnits: avt, IdempotencyKey: "k2"},
		"zero":      {From: alice, To: bob, Target: "alpha-op1", AmountUnits: 0, IdempotencyKey: "k2"},
		"no target": {From: alice, To: bob, AmountUnits: avt, IdempotencyKey: "k2"},
		"bad key":   {From: alice, To: bob, Target: "alpha-op1", AmountUnits: avt, IdempotencyKey: "#x"},
		"too small": {From: alice, To: bob, Target: "alpha-op1", AmountUnits: 1, IdempotencyKey: "k2"},
	} {
		_, err := src.store.BeginXfer(src.ctx, bad)
		require.Equal(t, apperr.Invalid, apperr.CodeOf(err), name)
	}
	_, err = src.store.BeginXfer(src.ctx, ledgerstore.XferRequest{From: alice, To: bob, Target: "alpha-op1", AmountUnits: 91 * avt, IdempotencyKey: "k3"})
	require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(err))
	require.Equal(t, snap, src.snapshot())

	// The participant prepares the known receiver and rejects the other.
	ghost := ledgerstore.XferPrepareItem{ID: uuid.New(), From: alice, To: agentID(), AmountUnits: avt}
	item := ledgerstore.XferPrepareItem{ID: x.ID, From: alice, To: bob, AmountUnits: 10 * avt, Memo: "hi"}
	for range 2 { // duplicate delivery answers the same
		rs, err := dst.store.PrepareXfers(dst.ctx, "alpha-main", []ledgerstore.XferPrepareItem{item, ghost})
		require.NoError(t, err)
		require.Equal(t, xferstate.Prepared, rs[0].Status)
		require.Equal(t, 5_000_000, int(rs[0].FeeUnits), "0.5% of 10 AVT")
		require.Equal(t, []any{alice, bob, 10 * avt}, []any{rs[0].From, rs[0].To, rs[0].AmountUnits}, "the answer states the recorded terms")
		require.Equal(t, xferstate.Rejected, rs[1].Status)
		require.Contains(t, rs[1].Reason, "has no account on this registry")
	}
	// The same ID from another source is not this prepare.
	rs, err := dst.store.PrepareXfers(dst.ctx, "alpha-x", []ledgerstore.XferPrepareItem{item})
	require.NoError(t, err)
	require.Equal(t, xferstate.Rejected, rs[0].Status)

	// Decision: commit, twice; the hold moves to transit once.
	for range 2 {
		out, err := src.store.DecideXfers(src.ctx, []ledgerstore.XferDecision{{ID: x.ID, Commit: true}})
		require.NoError(t, err)
		require.Equal(t, xferstate.Committing, out[x.ID].Status)
	}
	units, held = src.balance(alice)
	require.Equal(t, 90*avt, units)
	require.Zero(t, held)
	tr, _ := src.balance(ledgerstore.TransitAccount("alpha-op1"))
	require.Equal(t, 10*avt, tr)
	// A later abort cannot undo a commit decision.
	out, err := src.store.DecideXfers(src.ctx, []ledgerstore.XferDecision{{ID: x.ID, Reason: "late"}})
	require.NoError(t, err)
	require.Equal(t, xferstate.Committing, out[x.ID].Status)

	// Commit on the participant, twice: credited once.
	for range 2 {
		rs, err := dst.store.CommitXfers(dst.ctx, "alpha-main", []ledgerstore.XferPrepareItem{item, ghost, {ID: uuid.New(), From: alice, To: bob, AmountUnits: avt}})
		require.NoError(t, err)
		require.Equal(t, xferstate.Committed, rs[0].Status)
		require.Equal(t, xferstate.Rejected, rs[1].Status)
		require.Equal(t, xferstate.Unknown, rs[2].Status)
	}
	b, _ := dst.balance(bob)
	require.Equal(t, 10*avt-5_000_000, b)
	fc, _ := dst.balance(ledger.AccountFeeCollector)
	require.Equal(t, int64(5_000_000), fc)
	in, _ := dst.balance(ledgerstore.TransitAccount("alpha-main"))
	require.Equal(t, -10*avt, in)
	rs, err = dst.store.AbortXfers(dst.ctx, "alpha-main", []uuid.UUID{x.ID})
	require.NoError(t, err)
	require.Equal(t, xferstate.Committed, rs[0].Status, "a committed prepare is never aborted")

	require.NoError(t, src.store.FinishXfers(src.ctx, map[uuid.UUID]int64{x.ID: 5_000_000}))
	got, err := src.store.GetXfer(src.ctx, x.ID)
	require.NoError(t, err)
	require.Equal(t, xferstate.Committed, got.Status)
	require.Equal(t, int64(5_000_000), got.FeeUnits)

	// Both sides emitted the informational TokensTransferred xfer-<id>
	// (no postings) and their own leg.
	require.Equal(t, 1, src.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1 AND envelope->'postings' IS NULL`, "xfer-"+x.ID.String()))
	require.Equal(t, 1, dst.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1 AND envelope->'postings' IS NULL`, "xfer-"+x.ID.String()))
	require.Equal(t, 1, src.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1 AND envelope->'payload'->>'hold_id' = $2`, "xfer-"+x.ID.String()+"-debit", x.HoldID.String()))
	require.Zero(t, src.count(`SELECT count(*) FROM outbox WHERE event_type = 'HoldPosted'`), "the debit is the cross-registry hold's post")
	require.Equal(t, 1, dst.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1`, "xfer-"+x.ID.String()+"-credit"))
	src.xferInvariants()
	dst.xferInvariants()
}

func TestCrossRegistryAbortVoidsTheHold(t *testing.T) {
	t.Parallel()
	src := newEnv(t, envOpts{})
	alice := src.agent(20 * avt)
	x, err := src.store.BeginXfer(src.ctx, ledgerstore.XferRequest{From: alice, To: agentID(), Target: "alpha-op1", AmountUnits: 5 * avt, IdempotencyKey: "a1"})
	require.NoError(t, err)
	y, err := src.store.BeginXfer(src.ctx, ledgerstore.XferRequest{From: alice, To: agentID(), Target: "alpha-op1", AmountUnits: 5 * avt, IdempotencyKey: "a2"})
	require.NoError(t, err)

	// One batch: x aborts, y's hold expired before the decision.
	src.clock.Advance(ledgerstore.XferHoldTTL + time.Minute)
	out, err := src.store.DecideXfers(src.ctx, []ledgerstore.XferDecision{{ID: x.ID, Reason: "rejected"}, {ID: y.ID, Commit: true}})
	require.NoError(t, err)
	require.Equal(t, xferstate.Aborted, out[x.ID].Status)
	require.Equal(t, "rejected", out[x.ID].Reason)
	require.Equal(t, xferstate.Aborted, out[y.ID].Status)
	require.Contains(t, out[y.ID].Reason, "expired")
	units, held := src.balance(alice)
	require.Equal(t, 20*avt, units)
	require.Zero(t, held)
	h, err := src.store.GetHold(src.ctx, x.HoldID)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.HoldVoided, h.Status)

	// Unknown transfers are refused as a whole.
	_, err = src.store.DecideXfers(src.ctx, []ledgerstore.XferDecision{{ID: uuid.New(), Commit: true}})
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	src.xferInvariants()
}

// TestCrossRegistryAbortKeepsTheHoldUntilTheTargetAcknowledged: an abort
// decision with KeepHoldOnAbort records aborting (the decision log answers
// abort) but leaves the sender's hold reserving the funds, untouched by the
// hold-expiry sweep, until VoidAbortedXfers voids it (once, with its
// HoldVoided event in the same transaction).
func TestCrossRegistryAbortKeepsTheHoldUntilTheTargetAcknowledged(t *testing.T) {
	t.Parallel()
	src := newEnv(t, envOpts{})
	alice := src.agent(20 * avt)
	begin := func(key string, amount int64) ledgerstore.Xfer {
		x, err := src.store.BeginXfer(src.ctx, ledgerstore.XferRequest{From: alice, To: agentID(), Target: "alpha-op1", AmountUnits: amount, IdempotencyKey: key})
		require.NoError(t, err)
		return x
	}
	x, y := begin("a1", 5*avt), begin("a2", 3*avt)

	// Decided abort (twice: idempotent; a later commit cannot flip it).
	for _, d := range []ledgerstore.XferDecision{
		{ID: x.ID, Reason: "rejected", KeepHoldOnAbort: true},
		{ID: x.ID, Reason: "again", KeepHoldOnAbort: true},
		{ID: x.ID, Commit: true, KeepHoldOnAbort: true},
	} {
		out, err := src.store.DecideXfers(src.ctx, []ledgerstore.XferDecision{d})
		require.NoError(t, err)
		require.Equal(t, xferstate.Aborting, out[x.ID].Status)
		require.Equal(t, "rejected", out[x.ID].Reason)
	}
	units, held := src.balance(alice)
	require.Equal(t, 20*avt, units)
	require.Equal(t, 8*avt, held, "the aborting transfer's funds stay reserved")
	h, err := src.store.GetHold(src.ctx, x.HoldID)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.HoldActive, h.Status)
	st, err := src.store.XferStatuses(src.ctx, []uuid.UUID{x.ID})
	require.NoError(t, err)
	require.Equal(t, xferstate.Aborting, st[x.ID].Status)
	require.Zero(t, src.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1`, "hold-voided-"+x.HoldID.String()))

	// Past the holds' expiry the sweep expires the pending transfer's
	// hold, never the aborting one's; crash recovery still sees both.
	src.clock.Advance(ledgerstore.XferHoldTTL + time.Minute)
	n, err := src.store.ExpireHolds(src.ctx, 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	h, err = src.store.GetHold(src.ctx, x.HoldID)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.HoldActive, h.Status)
	hy, err := src.store.GetHold(src.ctx, y.HoldID)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.HoldExpired, hy.Status)
	_, held = src.balance(alice)
	require.Equal(t, 5*avt, held)
	unsettled, err := src.store.UnsettledXfers(src.ctx, src.clock.Now(), 10)
	require.NoError(t, err)
	require.Len(t, unsettled, 2)
	// y's commit finds its hold expired: aborting too, nothing to void.
	out, err := src.store.DecideXfers(src.ctx, []ledgerstore.XferDecision{{ID: y.ID, Commit: true, KeepHoldOnAbort: true}})
	require.NoError(t, err)
	require.Equal(t, xferstate.Aborting, out[y.ID].Status)
	require.Contains(t, out[y.ID].Reason, "expired")

	// Unknown IDs are refused as a whole, nothing written.
	snap := src.snapshot()
	_, err = src.store.VoidAbortedXfers(src.ctx, []uuid.UUID{x.ID, uuid.New()})
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	require.Equal(t, snap, src.snapshot())

	// The target acknowledged: void, twice; released once.
	for range 2 {
		out, err := src.store.VoidAbortedXfers(src.ctx, []uuid.UUID{x.ID, y.ID, x.ID})
		require.NoError(t, err)
		require.Equal(t, xferstate.Aborted, out[x.ID].Status)
		require.Equal(t, "rejected", out[x.ID].Reason)
		require.Equal(t, xferstate.Aborted, out[y.ID].Status)
	}
	units, held = src.balance(alice)
	require.Equal(t, 20*avt, units)
	require.Zero(t, held)
	h, err = src.store.GetHold(src.ctx, x.HoldID)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.HoldVoided, h.Status)
	require.Equal(t, 1, src.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1`, "hold-voided-"+x.HoldID.String()))
	require.Zero(t, src.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1`, "hold-voided-"+y.HoldID.String()))
	got, err := src.store.GetXfer(src.ctx, x.ID)
	require.NoError(t, err)
	require.Equal(t, xferstate.Aborted, got.Status)
	unsettled, err = src.store.UnsettledXfers(src.ctx, src.clock.Now(), 10)
	require.NoError(t, err)
	require.Empty(t, unsettled)
	src.xferInvariants()
}

func TestBeginXfersDecidesEachTransferOfABatchOnItsOwn(t *testing.T) {
	t.Parallel()
	src := newEnv(t, envOpts{})
	alice := src.agent(10 * avt)
	carol := src.agent(10 * avt)
	bob := agentID()
	earlier, err := src.store.BeginXfer(src.ctx, ledgerstore.XferRequest{From: carol, To: bob, Target: "alpha-op1", AmountUnits: avt, IdempotencyKey: "c0"})
	require.NoError(t, err)
	reqs := []ledgerstore.XferRequest{
		{From: alice, To: bob, Target: "alpha-op1", AmountUnits: 6 * avt, IdempotencyKey: "a1"},
		{From: alice, To: bob, Target: "alpha-op1", AmountUnits: 6 * avt, IdempotencyKey: "a2"}, // short after a1
		{From: alice, To: bob, Target: "alpha-op1", AmountUnits: 6 * avt, IdempotencyKey: "a1"}, // duplicate in the batch
		{From: alice, To: bob, Target: "alpha-op1", AmountUnits: 0, IdempotencyKey: "a3"},       // invalid
		{From: carol, To: bob, Target: "alpha-op1", AmountUnits: avt, IdempotencyKey: "c0"},     // replay of an earlier one
		{From: carol, To: bob, Target: "alpha-op1", AmountUnits: 2 * avt, IdempotencyKey: "c0"}, // key reused
		{From: agentID(), To: bob, Target: "alpha-op1", AmountUnits: avt, IdempotencyKey: "x1"}, // unknown sender
		{From: carol, To: bob, Target: "alpha-op2", AmountUnits: 3 * avt, IdempotencyKey: "c1"},
	}
	res, err := src.store.BeginXfers(src.ctx, reqs)
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(res[1].Err))
	require.NoError(t, res[2].Err)
	require.True(t, res[2].Xfer.Replayed)
	require.Equal(t, res[0].Xfer.ID, res[2].Xfer.ID)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(res[3].Err))
	require.NoError(t, res[4].Err)
	require.Equal(t, earlier.ID, res[4].Xfer.ID)
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(res[5].Err))
	require.Equal(t, apperr.NotFound, apperr.CodeOf(res[6].Err))
	require.NoError(t, res[7].Err)
	_, held := src.balance(alice)
	require.Equal(t, 6*avt, held)
	_, held = src.balance(carol)
	require.Equal(t, 4*avt, held)
	require.Equal(t, 3, src.count(`SELECT count(*) FROM xfers`))
	src.xferInvariants()
}

// The statuses the schema accepts and the SQL spells are xferstate's: the
// CHECK constraints list exactly its coordinator and prepare statuses, and
// every status literal in the cross-registry queries is one of them.
func TestXferStatusesMatchTheSchemaAndQueries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{notMainframe: true})
	literal := regexp.MustCompile(`'([a-z_]+)'`)
	checked := func(table string) []string {
		var def string
		require.NoError(t, e.pool.QueryRow(e.ctx, `
			SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
			WHERE c.conrelid = $1::regclass AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%status = ANY%'`, table).Scan(&def))
		var out []string
		for _, m := range literal.FindAllStringSubmatch(def, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	names := func(ss []xferstate.Status) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = string(s)
		}
		slices.Sort(out)
		return out
	}
	require.Equal(t, names(xferstate.CoordinatorStatuses()), checked("xfers"))
	require.Equal(t, names(xferstate.PrepareStatuses()), checked("xfer_prepares"))

	known := map[string]bool{"active": true} // the one hold status xfer.sql names
	for _, s := range append(xferstate.CoordinatorStatuses(), xferstate.PrepareStatuses()...) {
		known[string(s)] = true
	}
	root, err := testenv.ModuleRoot()
	require.NoError(t, err)
	sql, err := os.ReadFile(filepath.Join(root, "queries", "teg", "xfer.sql"))
	require.NoError(t, err)
	n := 0
	for _, m := range literal.FindAllStringSubmatch(string(sql), -1) {
		require.True(t, known[m[1]], "queries/teg/xfer.sql: status %q is not in package xferstate", m[1])
		n++
	}
	require.Greater(t, n, 3, "the scan found the status literals")
	holds, err := os.ReadFile(filepath.Join(root, "queries", "teg", "holds.sql"))
	require.NoError(t, err)
	for _, m := range regexp.MustCompile(`x\.status = '([a-z_]+)'`).FindAllStringSubmatch(string(holds), -1) {
		require.Contains(t, xferstate.CoordinatorStatuses(), xferstate.Status(m[1]), "queries/teg/holds.sql")
	}
}

// mismatches reads xfer_terms_mismatch_total{side}.
func mismatches(t *testing.T, side string) float64 {
	t.Helper()
	for _, c := range ledgerstore.XferCheckCollectors() {
		if cv, ok := c.(*prometheus.CounterVec); ok {
			return testutil.ToFloat64(cv.WithLabelValues(side))
		}
	}
	t.Fatal("no xfer_terms_mismatch_total")
	return 0
}

// TestCrossRegistryTermsMustAgree: the target holds a prepare of a real
// transfer ID with an inflated amount and another receiver (as a saga
// started with forged input before the terms were checked would have left
// it). The coordinator's prepare is answered rejected with the target's
// terms; a commit stating the coordinator's terms credits nothing and is
// counted; the coordinator's decision aborts with the mismatch, records it
// with CrossRegistryTermsMismatch (once) and counts it; the sender's funds
// are never posted.
func TestCrossRegistryTermsMustAgree(t *testing.T) {
	t.Parallel()
	src := newEnv(t, envOpts{})
	dst := newEnv(t, envOpts{notMainframe: true})
	alice := src.agent(100 * avt)
	bob, mallory := agentID(), agentID()
	for _, a := range []string{bob, mallory} {
		_, _, err := dst.store.OpenAccount(dst.ctx, a, ledger.KindAgent)
		require.NoError(t, err)
	}
	x, err := src.store.BeginXfer(src.ctx, ledgerstore.XferRequest{From: alice, To: bob, Target: "alpha-op1", AmountUnits: 10 * avt, IdempotencyKey: "t1"})
	require.NoError(t, err)
	real := ledgerstore.XferPrepareItem{ID: x.ID, From: alice, To: bob, AmountUnits: 10 * avt}
	forged := ledgerstore.XferPrepareItem{ID: x.ID, From: alice, To: mallory, AmountUnits: 1000 * avt}
	rs, err := dst.store.PrepareXfers(dst.ctx, "alpha-main", []ledgerstore.XferPrepareItem{forged})
	require.NoError(t, err)
	require.Equal(t, xferstate.Prepared, rs[0].Status)

	rs, err = dst.store.PrepareXfers(dst.ctx, "alpha-main", []ledgerstore.XferPrepareItem{real})
	require.NoError(t, err)
	require.Equal(t, xferstate.Rejected, rs[0].Status)
	require.Equal(t, []any{mallory, 1000 * avt}, []any{rs[0].To, rs[0].AmountUnits}, "the answer shows what the target holds")

	snap := dst.snapshot()
	before := mismatches(t, "participant")
	for _, stated := range [][]ledgerstore.XferPrepareItem{
		{real},
		{{ID: x.ID, From: alice, To: mallory, AmountUnits: 10 * avt}},
		{{ID: x.ID, From: alice, To: bob, AmountUnits: 1000 * avt}},
	} {
		rs, err = dst.store.CommitXfers(dst.ctx, "alpha-main", stated)
		require.NoError(t, err)
		require.Equal(t, xferstate.Rejected, rs[0].Status)
		require.Equal(t, ledgerstore.ReasonTermsDiffer, rs[0].Reason)
	}
	require.Equal(t, snap, dst.snapshot(), "nothing credited")
	require.GreaterOrEqual(t, mismatches(t, "participant")-before, 3.0)
	mb, _ := dst.balance(mallory)
	require.Zero(t, mb)
	_, err = dst.store.CommitXfers(dst.ctx, "alpha-main", []ledgerstore.XferPrepareItem{real, {ID: x.ID, From: alice, To: bob, AmountUnits: avt}})
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "one ID stated with two sets of terms")

	// The coordinator refuses the mismatch at the decision.
	reported := xferstate.Terms{From: alice, To: mallory, AmountUnits: 1000 * avt, Currency: "AVT"}
	before = mismatches(t, "coordinator")
	d := ledgerstore.XferDecision{ID: x.ID, Reason: xferstate.ReasonTermsMismatch, KeepHoldOnAbort: true, Mismatch: "amount, to", Reported: &reported}
	for range 2 {
		out, err := src.store.DecideXfers(src.ctx, []ledgerstore.XferDecision{d})
		require.NoError(t, err)
		require.Equal(t, xferstate.Aborting, out[x.ID].Status)
		require.Equal(t, xferstate.ReasonTermsMismatch, out[x.ID].Reason)
	}
	require.Equal(t, 1.0, mismatches(t, "coordinator")-before, "counted once")
	require.Equal(t, 1, src.count(`SELECT count(*) FROM outbox WHERE event_type = 'CrossRegistryTermsMismatch' AND idempotency_key = $1
		AND envelope->'postings' IS NULL AND envelope->'payload'->'recorded'->>'to' = $2 AND envelope->'payload'->'reported'->>'to' = $3
		AND (envelope->'payload'->'reported'->>'amount_units')::bigint = $4 AND envelope->'payload'->>'differences' = 'amount, to'`,
		"xfer-"+x.ID.String()+"-mismatch", bob, mallory, 1000*avt))
	units, held := src.balance(alice)
	require.Equal(t, []int64{100 * avt, 10 * avt}, []int64{units, held}, "the hold still reserves, nothing posted")
	_, err = src.store.VoidAbortedXfers(src.ctx, []uuid.UUID{x.ID})
	require.NoError(t, err)
	units, held = src.balance(alice)
	require.Equal(t, []int64{100 * avt, 0}, []int64{units, held})
	// A decision with no mismatch writes no such event.
	y, err := src.store.BeginXfer(src.ctx, ledgerstore.XferRequest{From: alice, To: bob, Target: "alpha-op1", AmountUnits: avt, IdempotencyKey: "t2"})
	require.NoError(t, err)
	_, err = src.store.DecideXfers(src.ctx, []ledgerstore.XferDecision{{ID: y.ID, Reason: "rejected"}})
	require.NoError(t, err)
	require.Equal(t, 1, src.count(`SELECT count(*) FROM outbox WHERE event_type = 'CrossRegistryTermsMismatch'`))
	src.xferInvariants()
	dst.xferInvariants()
}
