package ledgerstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// The batching store takes an abandoned claim over for a retry of the same
// request, as db.IdempotencyStore does (its process died: another process
// of the registry gets the retry).
func TestIdempotencyBatcherTakesOverAStaleClaim(t *testing.T) {
	t.Parallel()
	b := ledgerstore.NewIdempotencyBatcher(testenv.NewDB(t, db.RoleTEG).Pool)
	defer b.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ok, _, err := b.Claim(ctx, "dev:a", "k", []byte("h1"), "POST", "/x", t0)
	require.NoError(t, err)
	require.True(t, ok)
	ok, _, err = b.Claim(ctx, "dev:a", "k", []byte("h1"), "POST", "/x", t0.Add(db.StaleClaimAfter/2))
	require.NoError(t, err)
	require.False(t, ok, "a fresh claim holds")
	late := t0.Add(db.StaleClaimAfter + time.Second)
	ok, rec, err := b.Claim(ctx, "dev:a", "k", []byte("h2"), "POST", "/x", late)
	require.NoError(t, err)
	require.False(t, ok, "another request never takes the key")
	require.Equal(t, []byte("h1"), rec.RequestHash)
	ok, _, err = b.Claim(ctx, "dev:a", "k", []byte("h1"), "POST", "/x", late)
	require.NoError(t, err)
	require.True(t, ok, "the retry takes the abandoned claim over")
}
