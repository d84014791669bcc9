package ledgerstore

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

const avtUnits = int64(100_000_000)

// The optimistic path must notice balances that moved between its unlocked
// read and its locks, and rerun with locks first. Not parallel: it sets a
// package hook.
func TestOptimisticBatchRevalidates(t *testing.T) {
	tdb := testenv.NewDB(t, db.RoleTEG)
	s := New(tdb.Pool, Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true})
	ctx := context.Background()
	_, err := s.Genesis(ctx, 1000*avtUnits)
	require.NoError(t, err)
	a, b := "did:theprotocol:"+uuid.NewString(), "did:theprotocol:"+uuid.NewString()
	for _, id := range []string{a, b} {
		_, _, err := s.OpenAccount(ctx, id, ledger.KindAgent)
		require.NoError(t, err)
	}
	_, err = s.Grant(ctx, SupplyRequest{To: a, AmountUnits: 10 * avtUnits, Reason: "t", Actor: "admin:t", IdempotencyKey: "g"})
	require.NoError(t, err)

	var once sync.Once
	testHookBeforeRevalidate = func() {
		once.Do(func() {
			// A competing transfer commits between the read and the locks.
			testHookBeforeRevalidate = nil
			_, err := s.Transfer(ctx, TransferRequest{From: a, To: b, AmountUnits: 5 * avtUnits, IdempotencyKey: "competitor"})
			require.NoError(t, err)
		})
	}
	defer func() { testHookBeforeRevalidate = nil }()

	_, err = s.Transfer(ctx, TransferRequest{From: a, To: b, AmountUnits: 8 * avtUnits, IdempotencyKey: "victim"})
	require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(err), "rerun with locks sees the competitor's debit: %v", err)
	var units int64
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT units FROM balances WHERE account_id = $1`, a).Scan(&units))
	require.Equal(t, 5*avtUnits, units)
	var n int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM transfers`).Scan(&n))
	require.Equal(t, 1, n, "the stale attempt's rows were rolled back")
}
