package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/registry"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// The migration's seed and events.DefaultPolicy are one policy written
// twice; they must agree, and every event type a component emits must be in
// it for that component.
func TestEmissionPolicySeedMatchesCode(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleEventStore)
	p, err := db.LoadPolicy(context.Background(), tdb.Pool)
	require.NoError(t, err)
	require.Equal(t, events.DefaultPolicy, p.Rules())
	for _, typ := range registry.EventTypes {
		require.NoError(t, p.Check(events.SourceRegistry, typ), "registry emits %s", typ)
	}
}

func TestOutboxWriterRefusesDisallowedEvents(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleTEG)
	ctx := context.Background()
	p, err := db.LoadPolicy(ctx, tdb.Pool)
	require.NoError(t, err)
	require.ErrorContains(t, p.Check(events.SourceRegistry, events.TypeTokensTransferred), "may not emit")
	require.ErrorContains(t, p.Check(events.SourceTEG, "TokensConjured"), "unknown event type")
	require.NoError(t, p.Check(events.SourceTEG, events.TypeTokensTransferred))
}

// WriteBatch stamps, checks and inserts like Write; one refused event fails
// the whole batch and the transaction writes nothing.
func TestOutboxWriteBatch(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleTEG)
	ctx := context.Background()
	p, err := db.LoadPolicy(ctx, tdb.Pool)
	require.NoError(t, err)
	w := db.NewOutboxWriter("alpha", "alpha-main", events.SourceTEG, p.Guard())
	s := db.NewStore(tdb.Pool, "teg")
	mk := func(typ, key string) events.Envelope {
		e, err := events.New(typ, key, "s", time.Now())
		require.NoError(t, err)
		return e
	}
	err = s.Tx(ctx, func(tx pgx.Tx) error {
		return w.WriteBatch(ctx, tx, []events.Envelope{mk(events.TypeTokensTransferred, "a"), mk(events.TypeAgentRegistered, "b")})
	})
	require.ErrorContains(t, err, "may not emit AgentRegistered")
	var n int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n))
	require.Zero(t, n)

	batch := []events.Envelope{mk(events.TypeTokensTransferred, "x1"), mk(events.TypeTransactionFeeCollected, "x2"), mk(events.TypeHoldPlaced, "x3")}
	require.NoError(t, s.Tx(ctx, func(tx pgx.Tx) error { return w.WriteBatch(ctx, tx, batch) }))
	rows, err := tdb.Pool.Query(ctx, `SELECT idempotency_key, envelope->>'registry', envelope->>'source' FROM outbox ORDER BY id`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var k, reg, src string
		require.NoError(t, rows.Scan(&k, &reg, &src))
		got = append(got, k+"/"+reg+"/"+src)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"x1/alpha-main/teg", "x2/alpha-main/teg", "x3/alpha-main/teg"}, got)
}
