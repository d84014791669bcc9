package db_test

import (
	"context"
	"testing"

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
