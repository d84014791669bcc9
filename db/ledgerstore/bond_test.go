package ledgerstore_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
)

const bondUnits = 50 * avt

// developer opens a developer wallet funded with units from the treasury.
func (e *env) developer(units int64) string {
	e.t.Helper()
	id := "dev:" + uuid.New().String()
	_, _, err := e.store.OpenAccount(e.ctx, id, ledger.KindDeveloper)
	require.NoError(e.t, err)
	if units > 0 {
		_, err = e.store.Grant(e.ctx, ledgerstore.SupplyRequest{
			To: id, AmountUnits: units, Reason: "test funding", Actor: "admin:test", IdempotencyKey: "fund-" + id[4:],
		})
		require.NoError(e.t, err)
	}
	return id
}

// bucket returns the units of (account, bucket), 0 when the row is missing.
// Any other query error fails the test, so a zero read is a real zero.
func (e *env) bucket(id, bucket string) int64 {
	e.t.Helper()
	var units int64
	err := e.pool.QueryRow(e.ctx, `SELECT units FROM balances WHERE account_id = $1 AND bucket = $2`, id, bucket).Scan(&units)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	require.NoError(e.t, err, "balance of %s/%s", id, bucket)
	return units
}

func TestBondLockAndRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	dev, agent := e.developer(80*avt), e.agent(0)
	lockKey := "bond-lock-" + agent
	m, err := e.store.LockBond(e.ctx, agent, dev, bondUnits, lockKey)
	require.NoError(t, err)
	require.False(t, m.Replayed)
	require.Equal(t, ledgerstore.BondLock, m.Kind)
	require.Equal(t, 30*avt, e.bucket(dev, ledger.BucketLiquid))
	require.Equal(t, bondUnits, e.bucket(agent, ledger.BucketLockedBond))
	require.Zero(t, e.bucket(agent, ledger.BucketLiquid))

	// Replay: same move, nothing moved twice.
	before := e.snapshot()
	again, err := e.store.LockBond(e.ctx, agent, dev, bondUnits, lockKey)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, m.ID, again.ID)
	_, err = e.store.LockBond(e.ctx, agent, dev, bondUnits+1, lockKey)
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err))
	_, err = e.store.ReleaseBond(e.ctx, agent, bondUnits, lockKey)
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err), "same key, different kind")
	require.Equal(t, before, e.snapshot())

	rel, err := e.store.ReleaseBond(e.ctx, agent, bondUnits, "bond-mature-"+agent)
	require.NoError(t, err)
	require.Zero(t, e.bucket(agent, ledger.BucketLockedBond))
	require.Equal(t, bondUnits, e.bucket(agent, ledger.BucketLiquid))
	require.Equal(t, 30*avt, e.bucket(dev, ledger.BucketLiquid))
	before = e.snapshot()
	again, err = e.store.ReleaseBond(e.ctx, agent, bondUnits, "bond-mature-"+agent)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, rel.ID, again.ID)
	// A second move with another key finds no bond: NotFound, nothing written.
	_, err = e.store.ForfeitBond(e.ctx, agent, bondUnits, "bond-forfeit-"+agent)
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	require.Equal(t, before, e.snapshot())

	moves, err := e.store.BondMoves(e.ctx, agent)
	require.NoError(t, err)
	require.Len(t, moves, 2)
	require.Equal(t, 1, e.count(`SELECT count(*) FROM journal_entries WHERE kind = 'bond_lock'`))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM journal_entries WHERE kind = 'bond_release'`))
	e.checkInvariants()
}

func TestBondForfeitAndVoid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	dev := e.developer(100 * avt)
	a1, a2 := e.agent(0), e.agent(0)
	_, err := e.store.LockBond(e.ctx, a1, dev, bondUnits, "bond-lock-"+a1)
	require.NoError(t, err)
	_, err = e.store.LockBond(e.ctx, a2, dev, bondUnits, "bond-lock-"+a2)
	require.NoError(t, err)
	require.Zero(t, e.bucket(dev, ledger.BucketLiquid))
	treasury := e.bucket(ledger.AccountTreasury, ledger.BucketLiquid)

	for i := 0; i < 2; i++ { // second round: replays
		f, err := e.store.ForfeitBond(e.ctx, a1, bondUnits, "bond-forfeit-"+a1)
		require.NoError(t, err)
		require.Equal(t, i == 1, f.Replayed)
		require.Zero(t, e.bucket(a1, ledger.BucketLockedBond))
		require.Zero(t, e.bucket(a1, ledger.BucketLiquid))
		require.Equal(t, treasury+bondUnits, e.bucket(ledger.AccountTreasury, ledger.BucketLiquid))

		v, err := e.store.VoidBond(e.ctx, a2, dev, bondUnits, "bond-void-"+a2)
		require.NoError(t, err)
		require.Equal(t, i == 1, v.Replayed)
		require.Zero(t, e.bucket(a2, ledger.BucketLockedBond))
		require.Equal(t, bondUnits, e.bucket(dev, ledger.BucketLiquid))
	}
	require.Equal(t, 1, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'ReputationBondForfeited'`))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'ReputationBondVoided'`))
	// Event postings name the ledger's accounts and balance.
	require.Equal(t, 1, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'ReputationBondForfeited'
		AND envelope::jsonb->'postings' @> jsonb_build_array(
			jsonb_build_object('account', $1::text, 'bucket', 'locked_bond', 'delta', $2::bigint),
			jsonb_build_object('account', 'treasury', 'bucket', 'liquid', 'delta', $3::bigint))`, a1, -bondUnits, bondUnits))
	e.checkInvariants()
}

func TestBondLockInsufficientFundsWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	dev, agent := e.developer(49*avt), e.agent(0)
	before := e.snapshot()
	_, err := e.store.LockBond(e.ctx, agent, dev, bondUnits, "bond-lock-"+agent)
	require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(err))
	require.Equal(t, before, e.snapshot(), "not even the locked_bond row")

	// Unknown agent / developer: NotFound, nothing written.
	_, err = e.store.LockBond(e.ctx, agentID(), dev, bondUnits, "k1")
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	_, err = e.store.LockBond(e.ctx, agent, "dev:"+uuid.New().String(), bondUnits, "k2")
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	// Release of a bond never locked.
	_, err = e.store.ReleaseBond(e.ctx, agent, bondUnits, "k3")
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	// Wrong account kinds.
	_, err = e.store.LockBond(e.ctx, agent, ledger.AccountTreasury, bondUnits, "k4")
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	_, err = e.store.LockBond(e.ctx, dev, dev, bondUnits, "k5")
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	require.Equal(t, before, e.snapshot())

	n, err := e.store.TransferCount(e.ctx, agent)
	require.NoError(t, err)
	require.Zero(t, n)
	e.checkInvariants()
}

func TestBondTransferCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b := e.agent(10*avt), e.agent(0)
	for i := 0; i < 3; i++ {
		_, err := e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: a, To: b, AmountUnits: avt, IdempotencyKey: key("t", i)})
		require.NoError(t, err)
	}
	n, err := e.store.TransferCount(e.ctx, a)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	n, err = e.store.TransferCount(e.ctx, b)
	require.NoError(t, err)
	require.Zero(t, n, "received transfers do not count")
}

// Two workflows may watch one bond (the agent's own and a forged one) and
// forfeit it at the same moment with the same key: one moves the money,
// the other waits for the balance lock and must answer as a replay, not
// "holds 0 in locked_bond".
func TestBondTwinForfeitsRaceToOneMove(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	dev := e.developer(100 * avt)
	for round := 0; round < 5; round++ {
		agent := e.agent(0)
		_, err := e.store.LockBond(e.ctx, agent, dev, bondUnits/5, "bond-lock-"+agent)
		require.NoError(t, err)
		errs := make(chan error, 2)
		replayed := make(chan bool, 2)
		for range 2 {
			go func() {
				m, err := e.store.ForfeitBond(e.ctx, agent, bondUnits/5, "bond-forfeit-"+agent)
				errs <- err
				replayed <- m.Replayed
			}()
		}
		require.NoError(t, <-errs)
		require.NoError(t, <-errs)
		require.NotEqual(t, <-replayed, <-replayed, "exactly one of the twins moved the money")
		require.Zero(t, e.bucket(agent, ledger.BucketLockedBond))
	}
	require.Equal(t, 5, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'ReputationBondForfeited'`))
	e.checkInvariants()
}
