package ingest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest/internal/eventdb"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// A reactor's event is marked handled only together with its handling: a
// handler that fails, or a process that dies in the middle of one (its
// connection, and with it the transaction, gone), leaves the event
// unmarked, so the redelivery to another member of the group handles it.
// A duplicate delivered while the first is being handled waits and then
// skips it.
func TestReactorMarksAnEventOnlyWithItsHandling(t *testing.T) {
	ctx := context.Background()
	es := testenv.NewDB(t, db.RoleEventStore)
	store, q := db.NewStore(es.Pool, "reactor-test"), eventdb.New()
	env := events.Envelope{Registry: "alpha", IdempotencyKey: "ruled-1", Type: "DisputeRuled"}
	var calls atomic.Int32
	marked := func() bool {
		var n int
		require.NoError(t, es.Pool.QueryRow(ctx, `SELECT count(*) FROM reactor_processed WHERE reactor = 'r' AND idempotency_key = 'alpha/ruled-1'`).Scan(&n))
		return n == 1
	}

	// A failing handler leaves no mark.
	failing := Reactor{Name: "r", Handle: func(context.Context, events.Envelope) error { calls.Add(1); return errors.New("boom") }}
	require.Error(t, handleOnce(ctx, store, q, failing, env))
	require.False(t, marked())

	// The process dies while handling: its backend goes away mid-transaction.
	inside, release := make(chan struct{}), make(chan struct{})
	dying := Reactor{Name: "r", Handle: func(context.Context, events.Envelope) error {
		calls.Add(1)
		close(inside)
		<-release
		return nil
	}}
	done := make(chan error, 1)
	go func() { done <- handleOnce(ctx, store, q, dying, env) }()
	<-inside
	var killed bool
	require.NoError(t, es.Pool.QueryRow(ctx, `SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'idle in transaction' AND pid <> pg_backend_pid()`).Scan(&killed))
	require.True(t, killed, "the handling transaction's backend was terminated")
	close(release)
	require.Error(t, <-done, "the handling never committed")
	require.False(t, marked(), "a handling cut short leaves no mark")

	// The redelivery handles it; a duplicate arriving meanwhile waits, then skips.
	inside, release = make(chan struct{}), make(chan struct{})
	ok := Reactor{Name: "r", Handle: func(context.Context, events.Envelope) error {
		calls.Add(1)
		close(inside)
		<-release
		return nil
	}}
	go func() { done <- handleOnce(ctx, store, q, ok, env) }()
	<-inside
	dup := make(chan error, 1)
	go func() { dup <- handleOnce(ctx, store, q, ok, env) }()
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, es.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		return waiting == 1
	}, time.Minute, 20*time.Millisecond, "the duplicate waits for the handling in flight")
	require.Empty(t, dup, "the duplicate did not finish while the first was handling")
	close(release)
	require.NoError(t, <-done)
	require.NoError(t, <-dup)
	require.True(t, marked())
	require.Equal(t, int32(3), calls.Load(), "failed, cut short, handled; the duplicate skipped")
	require.NoError(t, handleOnce(ctx, store, q, ok, env), "a later redelivery skips")
	require.Equal(t, int32(3), calls.Load())
}
