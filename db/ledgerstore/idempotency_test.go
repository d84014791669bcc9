package ledgerstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

func TestIdempotencyBatcher(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleTEG)
	b := ledgerstore.NewIdempotencyBatcher(tdb.Pool)
	defer b.Close()
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

	ok, _, err := b.Claim(ctx, "dev:a", "k1", []byte("h1"), "POST", "/x", now)
	require.NoError(t, err)
	require.True(t, ok)
	ok, rec, err := b.Claim(ctx, "dev:a", "k1", []byte("h1"), "POST", "/x", now)
	require.NoError(t, err)
	require.False(t, ok)
	require.Zero(t, rec.StatusCode, "in flight")
	require.Equal(t, []byte("h1"), rec.RequestHash)
	ok, _, err = b.Claim(ctx, "dev:b", "k1", []byte("h1"), "POST", "/x", now)
	require.NoError(t, err)
	require.True(t, ok, "keys are scoped per caller")

	require.NoError(t, b.Complete(ctx, "dev:a", "k1", 201, []byte(`{"ok":true}`), now))
	ok, rec, err = b.Claim(ctx, "dev:a", "k1", []byte("h1"), "POST", "/x", now)
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, 201, rec.StatusCode)
	require.Equal(t, []byte(`{"ok":true}`), rec.Body)
	// A second Complete does not overwrite the stored response.
	require.NoError(t, b.Complete(ctx, "dev:a", "k1", 500, []byte(`x`), now))
	_, rec, err = b.Claim(ctx, "dev:a", "k1", nil, "POST", "/x", now)
	require.NoError(t, err)
	require.Equal(t, 201, rec.StatusCode)

	// Release drops an in-flight claim only.
	ok, _, err = b.Claim(ctx, "dev:a", "k2", []byte("h"), "POST", "/x", now)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, b.Release(ctx, "dev:a", "k2"))
	ok, _, err = b.Claim(ctx, "dev:a", "k2", []byte("h"), "POST", "/x", now)
	require.NoError(t, err)
	require.True(t, ok)

	// Concurrent claims: each key is won exactly once, many keys per batch.
	const keys, dups = 50, 8
	var mu sync.Mutex
	wins := map[string]int{}
	var wg sync.WaitGroup
	for i := range keys * dups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprintf("c%d", i%keys)
			ok, _, err := b.Claim(ctx, "dev:c", k, []byte("h"), "POST", "/x", now)
			require.NoError(t, err)
			if ok {
				mu.Lock()
				wins[k]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, wins, keys)
	for k, n := range wins {
		require.Equal(t, 1, n, k)
	}
}

// A caller that gives up (its client hung up) while its claim is in a
// batch leaves no claim behind: the batch may still commit it, and nobody
// would complete it, so the key would answer "in progress" for a day.
func TestIdempotencyBatcherReleasesAbandonedClaim(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleTEG)
	b := ledgerstore.NewIdempotencyBatcher(tdb.Pool)
	defer b.Close()
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

	// Hold the batch inside its transaction: an uncommitted row with the
	// same key makes the batch's insert wait for this transaction.
	blocker, err := tdb.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = blocker.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, method, path, created_at) VALUES ('dev:a', 'gone', 'h', 'POST', '/x', $1)`, now)
	require.NoError(t, err)

	cctx, cancel := context.WithCancel(ctx)
	res := make(chan error, 1)
	go func() {
		_, _, err := b.Claim(cctx, "dev:a", "gone", []byte("h"), "POST", "/x", now)
		res <- err
	}()
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		return waiting > 0
	}, 10*time.Second, 10*time.Millisecond, "the batch waits on the blocker")
	cancel()
	require.ErrorIs(t, <-res, context.Canceled)
	// The batch now commits the claim its caller no longer waits for.
	require.NoError(t, blocker.Rollback(ctx))

	require.Eventually(t, func() bool {
		ok, rec, err := b.Claim(ctx, "dev:a", "gone", []byte("h"), "POST", "/x", now)
		require.NoError(t, err)
		require.Zero(t, rec.StatusCode)
		return ok
	}, 10*time.Second, 20*time.Millisecond, "a retry with the same key runs")
}
