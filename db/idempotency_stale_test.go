package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// A claim whose request can no longer answer (its process died: with
// several processes behind one address the client's retry reaches
// another) is taken over by a retry of the same request once it is older
// than StaleClaimAfter; before that, and for any other request, the key
// still answers as before. A completed key is never taken over.
func TestIdempotencyStaleClaimIsTakenOverByItsRetry(t *testing.T) {
	t.Parallel()
	s := db.NewIdempotencyStore(testenv.NewDB(t, db.RoleRegistry).Pool)
	ctx := context.Background()
	t0 := time.Now()

	claimed, _, err := s.Claim(ctx, "dev:1", "k", []byte("h1"), "POST", "/x", t0)
	require.NoError(t, err)
	require.True(t, claimed)
	// The process that claimed it dies here: nobody completes or releases it.

	claimed, rec, err := s.Claim(ctx, "dev:1", "k", []byte("h1"), "POST", "/x", t0.Add(db.StaleClaimAfter-time.Second))
	require.NoError(t, err)
	require.False(t, claimed, "a fresh claim holds")
	require.Zero(t, rec.StatusCode)

	late := t0.Add(db.StaleClaimAfter + time.Second)
	claimed, rec, err = s.Claim(ctx, "dev:1", "k", []byte("h2"), "POST", "/x", late)
	require.NoError(t, err)
	require.False(t, claimed, "another request never takes the key")
	require.Equal(t, []byte("h1"), rec.RequestHash)

	claimed, _, err = s.Claim(ctx, "dev:1", "k", []byte("h1"), "POST", "/x", late)
	require.NoError(t, err)
	require.True(t, claimed, "the retry takes the abandoned claim over")
	claimed, _, err = s.Claim(ctx, "dev:1", "k", []byte("h1"), "POST", "/x", late)
	require.NoError(t, err)
	require.False(t, claimed, "taken over once: the claim is fresh again")

	require.NoError(t, s.Complete(ctx, "dev:1", "k", 202, []byte(`{"ok":true}`), late))
	claimed, rec, err = s.Claim(ctx, "dev:1", "k", []byte("h1"), "POST", "/x", late.Add(time.Hour))
	require.NoError(t, err)
	require.False(t, claimed, "a completed key answers from its record")
	require.Equal(t, 202, rec.StatusCode)
}
