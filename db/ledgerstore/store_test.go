package ledgerstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/recon"
)

func TestOpenAccountIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	id := agentID()
	a, created, err := e.store.OpenAccount(e.ctx, id, ledger.KindAgent)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, ledger.KindAgent, a.Kind)
	_, created, err = e.store.OpenAccount(e.ctx, id, ledger.KindAgent)
	require.NoError(t, err)
	require.False(t, created)

	_, _, err = e.store.OpenAccount(e.ctx, id, ledger.KindDeveloper)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	_, _, err = e.store.OpenAccount(e.ctx, "did:theprotocol:nope", ledger.KindAgent)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	_, _, err = e.store.OpenAccount(e.ctx, "dev:acme", ledger.KindDeveloper)
	require.NoError(t, err)
	_, _, err = e.store.OpenAccount(e.ctx, "transit:alpha-op1", ledger.KindTransit)
	require.NoError(t, err)

	b, err := e.store.Balances(e.ctx, id)
	require.NoError(t, err)
	require.Len(t, b.Buckets, 1)
	require.Zero(t, b.AvailableUnits)
	_, err = e.store.Balances(e.ctx, agentID())
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	e.checkInvariants()
}

type gateFunc func(context.Context) (recon.Verdict, error)

func (f gateFunc) SupplyVerdict(ctx context.Context) (recon.Verdict, error) { return f(ctx) }

func TestGenesisMintBurn(t *testing.T) {
	t.Parallel()
	var delta int64
	var failures []string
	var gateErr error
	var mu sync.Mutex
	gate := gateFunc(func(context.Context) (recon.Verdict, error) {
		mu.Lock()
		defer mu.Unlock()
		return recon.Verdict{Delta: delta, Failures: failures}, gateErr
	})
	e := newEnv(t, envOpts{gate: gate, genesis: 500 * avt})

	// Genesis is once: same amount replays, another amount conflicts.
	op, err := e.store.Genesis(e.ctx, 500*avt)
	require.NoError(t, err)
	require.True(t, op.Replayed)
	_, err = e.store.Genesis(e.ctx, 501*avt)
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err))
	tr, _ := e.balance(ledger.AccountTreasury)
	require.Equal(t, 500*avt, tr)

	req := ledgerstore.SupplyRequest{AmountUnits: 10 * avt, Reason: "top up", Actor: "admin:root", IdempotencyKey: "mint-1"}
	m, err := e.store.Mint(e.ctx, req)
	require.NoError(t, err)
	require.False(t, m.Replayed)
	m2, err := e.store.Mint(e.ctx, req)
	require.NoError(t, err)
	require.True(t, m2.Replayed)
	require.Equal(t, m.ID, m2.ID)
	bad := req
	bad.AmountUnits++
	_, err = e.store.Mint(e.ctx, bad)
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err))

	// The gate blocks new mints and burns, but not replays.
	before := e.snapshot()
	mu.Lock()
	delta = 7
	mu.Unlock()
	_, err = e.store.Mint(e.ctx, ledgerstore.SupplyRequest{AmountUnits: 1, Reason: "x", Actor: "admin:root", IdempotencyKey: "mint-2"})
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	require.Contains(t, apperr.MessageOf(err), "delta")
	_, err = e.store.Burn(e.ctx, ledgerstore.SupplyRequest{AmountUnits: 1, Reason: "x", Actor: "admin:root", IdempotencyKey: "burn-2"})
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	_, err = e.store.Mint(e.ctx, req)
	require.NoError(t, err, "replay ignores the gate")
	// A clean delta is not enough: a reconciliation failure blocks too.
	mu.Lock()
	delta, failures = 0, []string{"registry alpha-op1: liquid/agent differs by -1"}
	mu.Unlock()
	_, err = e.store.Mint(e.ctx, ledgerstore.SupplyRequest{AmountUnits: 1, Reason: "x", Actor: "admin:root", IdempotencyKey: "mint-4"})
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	require.Contains(t, apperr.MessageOf(err), "registry alpha-op1: liquid/agent differs by -1")
	mu.Lock()
	failures, gateErr = nil, errors.New("eventstore down")
	mu.Unlock()
	_, err = e.store.Mint(e.ctx, ledgerstore.SupplyRequest{AmountUnits: 1, Reason: "x", Actor: "admin:root", IdempotencyKey: "mint-3"})
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err))
	require.Equal(t, before, e.snapshot(), "refused mints write nothing")
	mu.Lock()
	gateErr = nil
	mu.Unlock()

	// Validation.
	for _, r := range []ledgerstore.SupplyRequest{
		{AmountUnits: 0, Reason: "x", Actor: "a", IdempotencyKey: "k"},
		{AmountUnits: -1, Reason: "x", Actor: "a", IdempotencyKey: "k"},
		{AmountUnits: 1, Reason: "", Actor: "a", IdempotencyKey: "k"},
		{AmountUnits: 1, Reason: "x", Actor: "a", IdempotencyKey: "bad key"},
	} {
		_, err = e.store.Mint(e.ctx, r)
		require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "%+v", r)
	}
	// Overflowing the supply is refused, not wrapped.
	_, err = e.store.Mint(e.ctx, ledgerstore.SupplyRequest{AmountUnits: math.MaxInt64, Reason: "x", Actor: "admin:root", IdempotencyKey: "huge"})
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))

	// Burn from the treasury; more than it holds is InsufficientFunds.
	_, err = e.store.Burn(e.ctx, ledgerstore.SupplyRequest{AmountUnits: 3 * avt, Reason: "slash", Actor: "admin:root", IdempotencyKey: "burn-1"})
	require.NoError(t, err)
	_, err = e.store.Burn(e.ctx, ledgerstore.SupplyRequest{AmountUnits: 1000 * avt, Reason: "too much", Actor: "admin:root", IdempotencyKey: "burn-3"})
	require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(err))

	sup, err := e.store.Supply(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 510*avt, sup.MintedUnits)
	require.Equal(t, 3*avt, sup.BurnedUnits)
	e.checkInvariants()
}

// A store given no gate refuses mint and burn: there is no gate that
// lets everything through.
func TestMintWithoutGateFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{noGate: true})
	before := e.snapshot()
	_, err := e.store.Mint(e.ctx, ledgerstore.SupplyRequest{AmountUnits: 1, Reason: "x", Actor: "admin:root", IdempotencyKey: "m"})
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err))
	_, err = e.store.Burn(e.ctx, ledgerstore.SupplyRequest{AmountUnits: 1, Reason: "x", Actor: "admin:root", IdempotencyKey: "b"})
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err))
	require.Equal(t, before, e.snapshot())
}

func TestMintRefusedOffMainframe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{notMainframe: true})
	before := e.snapshot()
	_, err := e.store.Genesis(e.ctx, avt)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	_, err = e.store.Mint(e.ctx, ledgerstore.SupplyRequest{AmountUnits: 1, Reason: "x", Actor: "admin:root", IdempotencyKey: "m"})
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	require.Contains(t, apperr.MessageOf(err), "mainframe")
	_, err = e.store.Burn(e.ctx, ledgerstore.SupplyRequest{AmountUnits: 1, Reason: "x", Actor: "admin:root", IdempotencyKey: "b"})
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	require.Equal(t, before, e.snapshot())
	// Grants work anywhere, but need treasury funds.
	a := e.agent(0)
	_, err = e.store.Grant(e.ctx, ledgerstore.SupplyRequest{To: a, AmountUnits: 1, Reason: "x", Actor: "admin:root", IdempotencyKey: "g"})
	require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(err))
}

func TestGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	dev := "dev:acme"
	_, _, err := e.store.OpenAccount(e.ctx, dev, ledger.KindDeveloper)
	require.NoError(t, err)
	r := ledgerstore.SupplyRequest{To: dev, AmountUnits: 25 * avt, Reason: "demo", Actor: "admin:root", IdempotencyKey: "g1"}
	g, err := e.store.Grant(e.ctx, r)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.OpGrant, g.Kind)
	g2, err := e.store.Grant(e.ctx, r)
	require.NoError(t, err)
	require.True(t, g2.Replayed)
	u, _ := e.balance(dev)
	require.Equal(t, 25*avt, u)

	before := e.snapshot()
	for _, c := range []struct {
		r    ledgerstore.SupplyRequest
		code apperr.Code
	}{
		{ledgerstore.SupplyRequest{To: agentID(), AmountUnits: 1, Reason: "x", Actor: "a", IdempotencyKey: "g2"}, apperr.NotFound},
		{ledgerstore.SupplyRequest{To: "treasury", AmountUnits: 1, Reason: "x", Actor: "a", IdempotencyKey: "g3"}, apperr.Invalid},
		{ledgerstore.SupplyRequest{To: "transit:x", AmountUnits: 1, Reason: "x", Actor: "a", IdempotencyKey: "g4"}, apperr.Invalid},
		{ledgerstore.SupplyRequest{To: dev, AmountUnits: 0, Reason: "x", Actor: "a", IdempotencyKey: "g5"}, apperr.Invalid},
		{ledgerstore.SupplyRequest{To: dev, AmountUnits: 2_000_000 * avt, Reason: "x", Actor: "a", IdempotencyKey: "g6"}, apperr.InsufficientFunds},
		{ledgerstore.SupplyRequest{To: dev, AmountUnits: 1, Reason: "other", Actor: "admin:root", IdempotencyKey: "g1"}, apperr.IdempotencyReuse},
	} {
		_, err := e.store.Grant(e.ctx, c.r)
		require.Equal(t, c.code, apperr.CodeOf(err), "%+v: %v", c.r, err)
	}
	require.Equal(t, before, e.snapshot())
	e.checkInvariants()
}

func TestTransferFeeSplitAndReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b := e.agent(100*avt), e.agent(0)
	req := ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 10 * avt, Memo: "lunch", IdempotencyKey: "t1"}
	tr, err := e.store.Transfer(e.ctx, req)
	require.NoError(t, err)
	require.False(t, tr.Replayed)
	require.Equal(t, int64(50), tr.FeeBps)
	require.Equal(t, 5_000_000, int(tr.FeeUnits))
	require.Equal(t, 10*avt-5_000_000, tr.NetUnits)
	ua, _ := e.balance(a)
	ub, _ := e.balance(b)
	uf, _ := e.balance(ledger.AccountFeeCollector)
	require.Equal(t, 90*avt, ua, "sender pays exactly the amount")
	require.Equal(t, tr.NetUnits, ub, "receiver gets amount − fee")
	require.Equal(t, tr.FeeUnits, uf)

	// Replay: same result, nothing applied twice.
	before := e.snapshot()
	again, err := e.store.Transfer(e.ctx, req)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, tr.ID, again.ID)
	require.Equal(t, tr.CreatedAt, again.CreatedAt)
	// Same key, different transfer.
	other := req
	other.AmountUnits++
	_, err = e.store.Transfer(e.ctx, other)
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err))
	require.Equal(t, before, e.snapshot())

	got, err := e.store.GetTransfer(e.ctx, tr.ID)
	require.NoError(t, err)
	require.Equal(t, tr.NetUnits, got.NetUnits)
	require.Equal(t, "lunch", got.Memo)
	_, err = e.store.GetTransfer(e.ctx, uuid.New())
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	e.checkInvariants()
}

// TestTransferIsItsOwnJournalEntry: a transfer writes no journal_entries
// row; ledger_journal derives its entry from the row (kind, legs), and a
// transfer that has a stored entry (written before migration 00111, or by
// the cross-registry path) is counted once, from the stored entry.
func TestTransferIsItsOwnJournalEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b := e.agent(100*avt), e.agent(0)
	tr, err := e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 10 * avt, IdempotencyKey: "j1"})
	require.NoError(t, err)
	require.Zero(t, e.count(`SELECT count(*) FROM journal_entries WHERE id = $1`, tr.ID), "no stored entry")
	var kind string
	var accounts, buckets []string
	var deltas []int64
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT kind, accounts, buckets, deltas FROM ledger_journal WHERE id = $1`, tr.ID).
		Scan(&kind, &accounts, &buckets, &deltas))
	require.Equal(t, "transfer", kind)
	require.Equal(t, []string{a, b, ledger.AccountFeeCollector}, accounts)
	require.Equal(t, []string{"liquid", "liquid", "liquid"}, buckets)
	require.Equal(t, []int64{-10 * avt, tr.NetUnits, tr.FeeUnits}, deltas)

	// As an older transfer would be: the same entry stored. Counted once.
	_, err = e.pool.Exec(e.ctx, `INSERT INTO journal_entries (id, kind, accounts, buckets, deltas, created_at)
		SELECT id, kind, accounts, buckets, deltas, created_at FROM ledger_journal WHERE id = $1`, tr.ID)
	require.NoError(t, err)
	require.Equal(t, 1, e.count(`SELECT count(*) FROM ledger_journal WHERE id = $1`, tr.ID))

	// The database refuses a transfer row whose derived entry would not
	// balance or would have a zero leg (fee ≥ amount, non-positive amount).
	for _, bad := range []struct{ amount, fee int64 }{{100, 100}, {100, 101}, {0, 0}, {-5, 0}, {100, -1}} {
		_, err := e.pool.Exec(e.ctx, `INSERT INTO transfers (id, sender, receiver, amount_units, fee_units, fee_bps, client_key, created_at)
			VALUES (gen_random_uuid(), $1, $2, $3, $4, 50, 'bad', now())`, a, b, bad.amount, bad.fee)
		require.Error(t, err, "amount %d fee %d", bad.amount, bad.fee)
	}

	// The envelope is stored verbatim (json, common/00011): the bytes the
	// writer encoded, compact, not jsonb's normalised text; and the column
	// still refuses anything that is not JSON.
	var env []byte
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT envelope FROM outbox WHERE idempotency_key = $1`, "xfer-"+tr.ID.String()).Scan(&env))
	require.True(t, bytes.HasPrefix(env, []byte(`{"event_id":"`)), "%s", env)
	require.NotContains(t, string(env), `", "`)
	require.True(t, json.Valid(env))
	_, err = e.pool.Exec(e.ctx, `INSERT INTO outbox (event_id, idempotency_key, event_type, subject, occurred_at, envelope)
		VALUES (gen_random_uuid(), 'not-json', 'TokensTransferred', '', now(), '{"truncated":')`)
	require.Error(t, err)
	e.checkInvariants()
}

func TestTransferBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b := e.agent(10*avt), e.agent(0)
	gc := e.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
	defer gc.Close()
	cases := []struct {
		name string
		r    ledgerstore.TransferRequest
		code apperr.Code
	}{
		{"zero", ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 0, IdempotencyKey: "k"}, apperr.Invalid},
		{"negative", ledgerstore.TransferRequest{From: a, To: b, AmountUnits: -5, IdempotencyKey: "k"}, apperr.Invalid},
		{"overflowing", ledgerstore.TransferRequest{From: a, To: b, AmountUnits: math.MaxInt64, IdempotencyKey: "k"}, apperr.InsufficientFunds},
		{"too small for the fee", ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 1, IdempotencyKey: "k"}, apperr.Invalid},
		{"self", ledgerstore.TransferRequest{From: a, To: a, AmountUnits: 5, IdempotencyKey: "k"}, apperr.Invalid},
		{"unknown receiver", ledgerstore.TransferRequest{From: a, To: agentID(), AmountUnits: 5, IdempotencyKey: "k"}, apperr.NotFound},
		{"unknown sender", ledgerstore.TransferRequest{From: agentID(), To: b, AmountUnits: 5, IdempotencyKey: "k"}, apperr.NotFound},
		{"malformed receiver", ledgerstore.TransferRequest{From: a, To: "did:theprotocol:xyz", AmountUnits: 5, IdempotencyKey: "k"}, apperr.Invalid},
		{"to a system account", ledgerstore.TransferRequest{From: a, To: "fee_collector", AmountUnits: 5, IdempotencyKey: "k"}, apperr.Invalid},
		{"from a system account", ledgerstore.TransferRequest{From: "treasury", To: b, AmountUnits: 5, IdempotencyKey: "k"}, apperr.Invalid},
		{"insufficient", ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 10*avt + 1, IdempotencyKey: "k"}, apperr.InsufficientFunds},
		{"no key", ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 5}, apperr.Invalid},
		{"reserved key", ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 5, IdempotencyKey: "#hold:x"}, apperr.Invalid},
		{"memo too long", ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 5, IdempotencyKey: "k", Memo: string(make([]byte, 281))}, apperr.Invalid},
		{"memo control chars", ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 5, IdempotencyKey: "k", Memo: "a\x00b"}, apperr.Invalid},
	}
	before := e.snapshot()
	for _, c := range cases {
		_, err := e.store.Transfer(e.ctx, c.r)
		require.Equal(t, c.code, apperr.CodeOf(err), "%s (direct): %v", c.name, err)
		_, err = gc.Transfer(e.ctx, c.r)
		require.Equal(t, c.code, apperr.CodeOf(err), "%s (group commit): %v", c.name, err)
	}
	require.Equal(t, before, e.snapshot())
}

func TestVelocityFee(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b, c := e.agent(1000*avt), e.agent(0), e.agent(0)
	var bps []int64
	for i := range 16 {
		tr, err := e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 1_000_001, IdempotencyKey: key("v", i)})
		require.NoError(t, err)
		bps = append(bps, tr.FeeBps)
		e.clock.Advance(time.Second)
	}
	require.Equal(t, []int64{50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 100, 100, 100, 100, 100, 150}, bps)
	// Another pair is unaffected; fees round up: 1,000,001 × 0.5% = 5000.005 → 5001.
	tr, err := e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: a, To: c, AmountUnits: 1_000_001, IdempotencyKey: "other"})
	require.NoError(t, err)
	require.Equal(t, int64(50), tr.FeeBps)
	require.Equal(t, int64(5001), tr.FeeUnits)
	// The window slides: 61 s later the pair is back at the base rate.
	e.clock.Advance(61 * time.Second)
	tr, err = e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 1_000_001, IdempotencyKey: "later"})
	require.NoError(t, err)
	require.Equal(t, int64(50), tr.FeeBps)
	e.checkInvariants()
}

func TestHoldLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b := e.agent(100*avt), e.agent(0)
	now := e.clock.Now()
	hr := ledgerstore.HoldRequest{From: a, To: b, AmountUnits: 60 * avt, ExpiresAt: now.Add(time.Hour), IdempotencyKey: "h1", Memo: "escrow"}
	h, err := e.store.PlaceHold(e.ctx, hr)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.HoldActive, h.Status)
	bal, err := e.store.Balances(e.ctx, a)
	require.NoError(t, err)
	require.Equal(t, 40*avt, bal.AvailableUnits, "available = liquid − holds")

	// Replay and reuse.
	h2, err := e.store.PlaceHold(e.ctx, hr)
	require.NoError(t, err)
	require.True(t, h2.Replayed)
	require.Equal(t, h.ID, h2.ID)
	bad := hr
	bad.AmountUnits = 1
	_, err = e.store.PlaceHold(e.ctx, bad)
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err))

	// Held funds cannot be spent by a transfer or another hold.
	_, err = e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 41 * avt, IdempotencyKey: "t"})
	require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(err))
	_, err = e.store.PlaceHold(e.ctx, ledgerstore.HoldRequest{From: a, To: b, AmountUnits: 41 * avt, ExpiresAt: now.Add(time.Hour), IdempotencyKey: "h2"})
	require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(err))

	// Partial post: 50 of 60 move (fee deducted), 10 are released.
	_, _, err = e.store.PostHold(e.ctx, h.ID, 61*avt)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	ph, tr, err := e.store.PostHold(e.ctx, h.ID, 50*avt)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.HoldPosted, ph.Status)
	require.Equal(t, 50*avt, ph.PostedUnits)
	require.Equal(t, h.ID, *tr.HoldID)
	require.Equal(t, int64(25_000_000), tr.FeeUnits)
	ua, ha := e.balance(a)
	require.Equal(t, 50*avt, ua)
	require.Zero(t, ha)
	ub, _ := e.balance(b)
	require.Equal(t, 50*avt-25_000_000, ub)
	// Posting again with the same amount replays; another amount conflicts; void fails.
	ph2, tr2, err := e.store.PostHold(e.ctx, h.ID, 50*avt)
	require.NoError(t, err)
	require.True(t, ph2.Replayed)
	require.Equal(t, tr.ID, tr2.ID)
	_, _, err = e.store.PostHold(e.ctx, h.ID, 0)
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err))
	_, err = e.store.VoidHold(e.ctx, h.ID)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))

	// Void releases; voiding again replays; posting a voided hold fails.
	v, err := e.store.PlaceHold(e.ctx, ledgerstore.HoldRequest{From: a, To: b, AmountUnits: 5 * avt, ExpiresAt: now.Add(time.Hour), IdempotencyKey: "h3"})
	require.NoError(t, err)
	v, err = e.store.VoidHold(e.ctx, v.ID)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.HoldVoided, v.Status)
	v2, err := e.store.VoidHold(e.ctx, v.ID)
	require.NoError(t, err)
	require.True(t, v2.Replayed)
	_, _, err = e.store.PostHold(e.ctx, v.ID, 0)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	_, ha = e.balance(a)
	require.Zero(t, ha)

	// Expiry: a post after expiry fails; the sweeper voids it and releases funds.
	x, err := e.store.PlaceHold(e.ctx, ledgerstore.HoldRequest{From: a, To: "transit:alpha-op1", AmountUnits: 7 * avt, ExpiresAt: now.Add(time.Minute), IdempotencyKey: "h4"})
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err), "transit account must be opened first")
	_, _, err = e.store.OpenAccount(e.ctx, "transit:alpha-op1", ledger.KindTransit)
	require.NoError(t, err)
	x, err = e.store.PlaceHold(e.ctx, ledgerstore.HoldRequest{From: a, To: "transit:alpha-op1", AmountUnits: 7 * avt, ExpiresAt: now.Add(time.Minute), IdempotencyKey: "h4"})
	require.NoError(t, err)
	n, err := e.store.ExpireHolds(e.ctx, 100)
	require.NoError(t, err)
	require.Zero(t, n, "not yet expired")
	e.clock.Advance(2 * time.Minute)
	_, _, err = e.store.PostHold(e.ctx, x.ID, 0)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	n, err = e.store.ExpireHolds(e.ctx, 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got, err := e.store.GetHold(e.ctx, x.ID)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.HoldExpired, got.Status)
	_, ha = e.balance(a)
	require.Zero(t, ha)

	// A post to a transit account pays no fee (the saga's path).
	y, err := e.store.PlaceHold(e.ctx, ledgerstore.HoldRequest{From: a, To: "transit:alpha-op1", AmountUnits: 3 * avt, ExpiresAt: e.clock.Now().Add(time.Minute), IdempotencyKey: "h5"})
	require.NoError(t, err)
	_, ty, err := e.store.PostHold(e.ctx, y.ID, 0)
	require.NoError(t, err)
	require.Zero(t, ty.FeeUnits)
	ut, _ := e.balance("transit:alpha-op1")
	require.Equal(t, 3*avt, ut)

	// Bad hold requests write nothing.
	before := e.snapshot()
	for _, r := range []ledgerstore.HoldRequest{
		{From: a, To: b, AmountUnits: 0, ExpiresAt: e.clock.Now().Add(time.Minute), IdempotencyKey: "x1"},
		{From: a, To: b, AmountUnits: 1, ExpiresAt: e.clock.Now().Add(-time.Minute), IdempotencyKey: "x2"},
		{From: a, To: b, AmountUnits: 1, ExpiresAt: e.clock.Now().Add(8 * 24 * time.Hour), IdempotencyKey: "x3"},
		{From: a, To: a, AmountUnits: 1, ExpiresAt: e.clock.Now().Add(time.Minute), IdempotencyKey: "x4"},
		{From: a, To: "treasury", AmountUnits: 1, ExpiresAt: e.clock.Now().Add(time.Minute), IdempotencyKey: "x5"},
		{From: a, To: agentID(), AmountUnits: 1, ExpiresAt: e.clock.Now().Add(time.Minute), IdempotencyKey: "x6"},
	} {
		_, err := e.store.PlaceHold(e.ctx, r)
		require.Error(t, err, "%+v", r)
	}
	_, _, err = e.store.PostHold(e.ctx, uuid.New(), 0)
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	_, err = e.store.VoidHold(e.ctx, uuid.New())
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	require.Equal(t, before, e.snapshot())
	e.checkInvariants()
}

func TestListTransfersPaginates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b, c := e.agent(100*avt), e.agent(100*avt), e.agent(0)
	var want []uuid.UUID
	for i := range 7 {
		// a sends on even i, b sends on odd i, and every third goes b → a.
		from, to := a, c
		if i%2 == 1 {
			from = b
		}
		if i%3 == 0 {
			from, to = b, a
		}
		tr, err := e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: from, To: to, AmountUnits: avt, IdempotencyKey: key("p", i)})
		require.NoError(t, err)
		if tr.From == a || tr.To == a {
			want = append([]uuid.UUID{tr.ID}, want...)
		}
		e.clock.Advance(time.Millisecond)
	}
	var got []uuid.UUID
	cursor := uuid.Nil
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		page, next, err := e.store.ListTransfers(e.ctx, a, cursor, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2)
		for _, tr := range page {
			got = append(got, tr.ID)
		}
		if next == uuid.Nil {
			break
		}
		cursor = next
	}
	require.Equal(t, want, got, "newest first, sent and received, no gaps or repeats")
	_, _, err := e.store.ListTransfers(e.ctx, agentID(), uuid.Nil, 10)
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
}
