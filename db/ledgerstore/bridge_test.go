package ledgerstore_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
)

func (e *env) bridgeBucket(account, bucket string) int64 {
	e.t.Helper()
	var units int64
	require.NoError(e.t, e.pool.QueryRow(e.ctx,
		`SELECT coalesce((SELECT units FROM balances WHERE account_id = $1 AND bucket = $2), 0)`, account, bucket).Scan(&units))
	return units
}

// The origin side: a send locks into bridge:<peer>, a refund unlocks it,
// and a completed send cannot be refunded (nor a refunded one completed).
func TestBridgeSendLockRefundComplete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	alice := e.agent(100 * avt)
	escrow := ledger.BridgeEscrowAccount("beta")
	bob := agentID()
	start := func(key string, amount int64) (ledgerstore.BridgeTransfer, error) {
		return e.store.BridgeStart(e.ctx, ledgerstore.BridgeRequest{Kind: ledgerstore.BridgeSend, PeerFrame: "beta", Sender: alice,
			Recipient: bob, AmountUnits: amount, ClientKey: key, Window: time.Minute, WorkflowID: func(id uuid.UUID) string { return "bridge-" + id.String() }})
	}
	before := e.snapshot()
	_, err := start("too-much", 101*avt)
	require.True(t, apperr.Is(err, apperr.InsufficientFunds), "%v", err)
	require.Equal(t, before, e.snapshot(), "a refused send writes nothing")

	t1, err := start("one", 10*avt)
	require.NoError(t, err)
	again, err := start("one", 10*avt)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, t1.ID, again.ID)
	units, _ := e.balance(alice)
	require.Equal(t, 90*avt, units)
	require.Equal(t, 10*avt, e.bridgeBucket(escrow, ledger.BucketLockedBridge))

	_, err = e.store.BridgeRefund(e.ctx, t1.ID, "peer refused")
	require.NoError(t, err)
	_, err = e.store.BridgeRefund(e.ctx, t1.ID, "again")
	require.NoError(t, err, "a refund is idempotent")
	units, _ = e.balance(alice)
	require.Equal(t, 100*avt, units, "the sender is whole")
	require.Zero(t, e.bridgeBucket(escrow, ledger.BucketLockedBridge))
	_, err = e.store.BridgeComplete(e.ctx, t1.ID, 0)
	require.True(t, apperr.Is(err, apperr.Conflict), "a refunded send never completes: %v", err)

	t2, err := start("two", 5*avt)
	require.NoError(t, err)
	_, err = e.store.BridgeComplete(e.ctx, t2.ID, 1)
	require.NoError(t, err)
	_, err = e.store.BridgeRefund(e.ctx, t2.ID, "late")
	require.True(t, apperr.Is(err, apperr.Conflict), "a completed send never unlocks: %v", err)
	require.Equal(t, 5*avt, e.bridgeBucket(escrow, ledger.BucketLockedBridge))
	e.checkInvariants()
}

// The target side: a mint applies once whatever the repeats, is refused
// after its expiry and after a question fenced it, and a release never
// takes more than the escrow holds.
func TestBridgeApplyOnceAndFences(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	bob := e.agent(0)
	w := ledger.WrappedBucket("alpha")
	mint := func(id uuid.UUID, amount int64, expires time.Time) ledgerstore.BridgeInboundResult {
		res, err := e.store.BridgeApply(e.ctx, ledgerstore.BridgeInbound{ID: id, Kind: ledgerstore.BridgeMint, PeerFrame: "alpha",
			Recipient: bob, AmountUnits: amount, ExpiresAt: expires})
		require.NoError(t, err)
		return res
	}
	later := e.clock.Now().Add(time.Minute)
	id := uuid.New()
	for range 3 {
		res := mint(id, 10*avt, later)
		require.Equal(t, ledgerstore.BridgeApplied, res.Status)
		require.Equal(t, int64(5_000_000), res.FeeUnits)
	}
	require.Equal(t, 10*avt-5_000_000, e.bridgeBucket(bob, w), "minted once")
	require.Equal(t, int64(5_000_000), e.bridgeBucket(ledger.AccountFeeCollector, w))
	require.Equal(t, -10*avt, e.bridgeBucket(ledger.AccountIssuance, w))
	require.Zero(t, e.bridgeBucket(bob, ledger.BucketLiquid), "nothing native is minted")
	st, err := e.store.BridgeInboundStatus(e.ctx, "alpha", ledgerstore.BridgeMint, id)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.BridgeApplied, st)
	// Other terms under the same ID: refused.
	_, err = e.store.BridgeApply(e.ctx, ledgerstore.BridgeInbound{ID: id, Kind: ledgerstore.BridgeMint, PeerFrame: "alpha", Recipient: bob, AmountUnits: avt, ExpiresAt: later})
	require.True(t, apperr.Is(err, apperr.Conflict), "%v", err)

	// Expired on arrival: refused and fenced.
	expired := uuid.New()
	require.Equal(t, ledgerstore.BridgeRejected, mint(expired, avt, e.clock.Now().Add(-time.Second)).Status)
	require.Equal(t, ledgerstore.BridgeFenced, mint(expired, avt, later).Status)

	// Asked about before it arrived: fenced, so a late delivery is refused.
	asked := uuid.New()
	st, err = e.store.BridgeInboundStatus(e.ctx, "alpha", ledgerstore.BridgeMint, asked)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.BridgeFenced, st)
	require.Equal(t, ledgerstore.BridgeFenced, mint(asked, avt, later).Status)

	// Unknown recipient: refused, nothing minted.
	res, err := e.store.BridgeApply(e.ctx, ledgerstore.BridgeInbound{ID: uuid.New(), Kind: ledgerstore.BridgeMint, PeerFrame: "alpha", Recipient: agentID(), AmountUnits: avt, ExpiresAt: later})
	require.NoError(t, err)
	require.Equal(t, ledgerstore.BridgeRejected, res.Status)
	require.Equal(t, -10*avt, e.bridgeBucket(ledger.AccountIssuance, w))

	// A release is bounded by the escrow for the asking frame (empty here).
	res, err = e.store.BridgeApply(e.ctx, ledgerstore.BridgeInbound{ID: uuid.New(), Kind: ledgerstore.BridgeRelease, PeerFrame: "alpha", Recipient: bob, AmountUnits: avt, ExpiresAt: later})
	require.NoError(t, err)
	require.Equal(t, ledgerstore.BridgeRejected, res.Status)
	require.Zero(t, e.bridgeBucket(bob, ledger.BucketLiquid))
	e.checkInvariants()
}

// Several sends in one transaction: each answered on its own (a short
// sender refused without affecting the others), a repeated key answered
// with the original, and a retry of a committed key replayed.
func TestBridgeStartMany(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	rich, poor := e.agent(100*avt), e.agent(avt)
	bob := agentID()
	wf := func(id uuid.UUID) string { return "bridge-" + id.String() }
	req := func(from, key string, amount int64) ledgerstore.BridgeRequest {
		return ledgerstore.BridgeRequest{Kind: ledgerstore.BridgeSend, PeerFrame: "beta", Sender: from, Recipient: bob,
			AmountUnits: amount, ClientKey: key, Window: time.Minute, WorkflowID: wf}
	}
	res := e.store.BridgeStartMany(e.ctx, []ledgerstore.BridgeRequest{
		req(rich, "a", 10*avt), req(poor, "b", 2*avt), req(rich, "c", 5*avt), req(rich, "a", 10*avt),
	})
	require.NoError(t, res[0].Err)
	require.True(t, apperr.Is(res[1].Err, apperr.InsufficientFunds), "%v", res[1].Err)
	require.NoError(t, res[2].Err)
	require.NoError(t, res[3].Err)
	require.Equal(t, res[0].Transfer.ID, res[3].Transfer.ID)
	again := e.store.BridgeStartMany(e.ctx, []ledgerstore.BridgeRequest{req(rich, "c", 5*avt), req(rich, "d", avt)})
	require.NoError(t, again[0].Err)
	require.Equal(t, res[2].Transfer.ID, again[0].Transfer.ID)
	require.NoError(t, again[1].Err)
	units, _ := e.balance(rich)
	require.Equal(t, 84*avt, units)
	units, _ = e.balance(poor)
	require.Equal(t, avt, units)
	require.Equal(t, 16*avt, e.bridgeBucket(ledger.BridgeEscrowAccount("beta"), ledger.BucketLockedBridge))
	require.Equal(t, 3, e.count(`SELECT count(*) FROM bridge_transfers`))
	e.checkInvariants()
}

// A batch applies like its items one by one, with one statement per kind
// of row: a repeated ID in the batch is answered from the first, an
// unknown recipient or an invalid item is refused without touching the
// others, and each applied mint is its own journal entry.
func TestBridgeApplyBatchMixed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	bob, carol := e.agent(0), e.agent(0)
	w := ledger.WrappedBucket("alpha")
	later := e.clock.Now().Add(time.Minute)
	mint := func(id uuid.UUID, to string, amount int64) ledgerstore.BridgeInbound {
		return ledgerstore.BridgeInbound{ID: id, Kind: ledgerstore.BridgeMint, PeerFrame: "alpha", Recipient: to, AmountUnits: amount, ExpiresAt: later}
	}
	var entries0 int
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT count(*) FROM journal_entries`).Scan(&entries0))
	first, nobody := uuid.New(), uuid.New()
	res, err := e.store.BridgeApplyBatch(e.ctx, []ledgerstore.BridgeInbound{
		mint(first, bob, 10*avt),
		mint(nobody, agentID(), avt),
		mint(first, bob, 10*avt),
		mint(first, carol, avt), // the same ID with other terms
		mint(uuid.Nil, bob, avt),
		mint(uuid.New(), carol, 2*avt),
	})
	require.NoError(t, err)
	got := make([]string, len(res))
	for i, r := range res {
		got[i] = r.Status
	}
	require.Equal(t, []string{ledgerstore.BridgeApplied, ledgerstore.BridgeRejected, ledgerstore.BridgeApplied,
		ledgerstore.BridgeRejected, ledgerstore.BridgeRejected, ledgerstore.BridgeApplied}, got)
	require.Equal(t, 10*avt-5_000_000, e.bridgeBucket(bob, w), "minted once")
	require.Equal(t, 2*avt-1_000_000, e.bridgeBucket(carol, w))
	require.Equal(t, int64(6_000_000), e.bridgeBucket(ledger.AccountFeeCollector, w))
	require.Equal(t, -12*avt, e.bridgeBucket(ledger.AccountIssuance, w))
	var recipient string
	var amount int64
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT recipient, amount_units FROM bridge_inbound WHERE id = $1`, first).Scan(&recipient, &amount))
	require.Equal(t, bob, recipient, "recorded with the terms it was applied with")
	require.Equal(t, 10*avt, amount)
	var entries int
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT count(*) FROM journal_entries`).Scan(&entries))
	require.Equal(t, entries0+2, entries, "one journal entry per applied mint")
	st, err := e.store.BridgeInboundStatus(e.ctx, "alpha", ledgerstore.BridgeMint, nobody)
	require.NoError(t, err)
	require.Equal(t, ledgerstore.BridgeFenced, st, "the refused mint is fenced")
	e.checkInvariants()
}
