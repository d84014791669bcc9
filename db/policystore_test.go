package db_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// Put replaces a rule and writes EmissionPolicyChanged, carrying the rule,
// in the same transaction; when the event is refused the rule is not
// changed either.
func TestPolicyStorePutEmitsInSameTransaction(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleEventStore)
	ctx := context.Background()
	p, err := db.LoadPolicy(ctx, tdb.Pool)
	require.NoError(t, err)
	s := db.NewStore(tdb.Pool, "eventstore")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	perm := events.Permission{FromTEG: true, FromWorker: true}

	// A registry may not author EmissionPolicyChanged: the write fails.
	refused := db.NewPolicyStore(s, db.NewOutboxWriter("alpha", "alpha-main", events.SourceRegistry, p.Guard()))
	_, err = refused.Put(ctx, events.TypeHoldPlaced, perm, "admin", now)
	require.ErrorContains(t, err, "may not emit")
	rules, err := refused.List(ctx)
	require.NoError(t, err)
	for _, r := range rules {
		if r.EventType == events.TypeHoldPlaced {
			require.Equal(t, events.DefaultPolicy[events.TypeHoldPlaced],
				events.Permission{FromTEG: r.EmitFromTEG, FromRegistry: r.EmitFromRegistry, FromEventStore: r.EmitFromEventStore, FromWorker: r.EmitFromWorker},
				"rolled back with the refused event")
		}
	}
	var n int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n))
	require.Zero(t, n)

	ps := db.NewPolicyStore(s, db.NewOutboxWriter("alpha", "alpha-main", events.SourceEventStore, p.Guard()))
	rule, err := ps.Put(ctx, events.TypeHoldPlaced, perm, "admin", now)
	require.NoError(t, err)
	want := db.PolicyRule{EventType: events.TypeHoldPlaced, EmitFromTEG: true, EmitFromWorker: true, UpdatedAt: now, UpdatedBy: "admin"}
	requireRule := func(got db.PolicyRule) {
		t.Helper()
		require.True(t, got.UpdatedAt.Equal(now), "updated at %s", got.UpdatedAt)
		got.UpdatedAt = now
		require.Equal(t, want, got)
	}
	requireRule(rule)
	rules, err = ps.List(ctx)
	require.NoError(t, err)
	found := false
	for _, r := range rules {
		if r.EventType == events.TypeHoldPlaced {
			requireRule(r)
			found = true
		}
	}
	require.True(t, found)

	var key, typ, subject string
	var raw []byte
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT idempotency_key, event_type, subject, envelope FROM outbox`).Scan(&key, &typ, &subject, &raw))
	require.Equal(t, "emission-policy-HoldPlaced-"+strconv.FormatInt(now.UnixNano(), 10), key)
	require.Equal(t, events.TypeEmissionPolicyChanged, typ)
	require.Equal(t, events.TypeHoldPlaced, subject)
	var env events.Envelope
	require.NoError(t, json.Unmarshal(raw, &env))
	require.Equal(t, events.SourceEventStore, env.Source)
	var payload map[string]any
	require.NoError(t, json.Unmarshal(env.Payload, &payload))
	require.ElementsMatch(t, []string{"event_type", "emit_from_teg", "emit_from_registry", "emit_from_eventstore", "emit_from_worker", "updated_at", "updated_by"},
		keys(payload), "the payload's fields are part of the event contract")
	var carried db.PolicyRule
	require.NoError(t, json.Unmarshal(env.Payload, &carried))
	requireRule(carried)
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
