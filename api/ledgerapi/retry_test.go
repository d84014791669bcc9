package ledgerapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/payments"
	"github.com/theprotocol-dev/theprotocol/stakes"
)

// TestRetriesAfterRetentionAndAfterACrash retries hold, grant, mint, stake
// and slash requests, on the production wiring (group commit, batched
// idempotency records, real Postgres), in the two situations the stored
// response cannot answer:
//
//   - retention: the request succeeded and the idempotency sweep has since
//     deleted its record. The retry runs the handler again; the business
//     key (the Idempotency-Key passed down, or the slash's case) must
//     answer with the original and apply nothing.
//   - a crash between claim and completion, either after the business
//     commit (the record is left claimed with no response) or before it
//     (only the claim was written). Retries answer 409 "in progress" while
//     the claim stands, and once the sweep has dropped the abandoned claim
//     the retry must succeed with the operation applied exactly once.
func TestRetriesAfterRetentionAndAfterACrash(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	ctx := context.Background()
	idem := ledgerstore.NewIdempotencyBatcher(f.pool)
	t.Cleanup(idem.Close)
	gc := f.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
	t.Cleanup(gc.Close)
	cd := &fakeCooldowns{t: t, started: map[int64]time.Time{}, locks: map[int64]time.Time{}}
	e := api.NewEngine(api.EngineOptions{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), MaxBodyBytes: 64 << 10})
	v1 := e.Group("/api/v1")
	ledgerapi.New(ledgerapi.Options{Store: f.store, Payments: &payments.Service{Ledger: f.store, Transfers: gc}, Idempotency: idem, Auth: testAuth}).Mount(v1)
	ledgerapi.NewStaking(ledgerapi.StakingOptions{
		Store: f.store, Idempotency: idem, Auth: testAuth,
		Stakes: &stakes.Service{Ledger: f.store, Registry: "alpha-main", Temporal: cd, TaskQueue: "alpha-main"},
	}).Mount(v1)
	f.h = e
	// The idempotency sweep as the scheduled workflow runs it; a cutoff
	// ahead of now stands for the retention period having passed.
	sweeper := &activities.Sweeper{Stores: []activities.IdempotencySweeper{db.NewIdempotencyStore(f.pool)}}
	sweep := func() {
		t.Helper()
		_, err := sweeper.SweepIdempotencyKeys(ctx, activities.SweepBatch{Cutoff: time.Now().Add(time.Hour), Limit: 10_000})
		require.NoError(t, err)
		var left int
		require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys`).Scan(&left))
		require.Zero(t, left, "the sweep deleted every record")
	}

	alice, bob := f.agent(1000*avt), f.agent(0)
	const admin = "admin:retry"
	type op struct {
		name, path, subject, scopes string
		body                        func(n int) string // n tells the scenarios apart where the business key is in the body
		idField                     string
		status                      int
		before                      func(n int) // sets up what the operation needs
	}
	stakeNow := func(n int) {
		r := f.do(req{method: "POST", path: "/api/v1/staking/stake", body: `{"tier":"flexible","amount":"10"}`, subject: alice, key: fmt.Sprintf("pre-slash-%d", n)})
		require.Equal(t, 201, r.status, string(r.body))
	}
	ops := []op{
		{name: "hold", path: "/api/v1/holds", subject: alice, scopes: api.ScopeAgent, idField: "id", status: 201,
			body: func(int) string { return fmt.Sprintf(`{"to":%q,"amount":"3"}`, bob) }},
		{name: "grant", path: "/api/v1/admin/grants", subject: admin, scopes: api.ScopeAdmin, idField: "id", status: 201,
			body: func(int) string { return fmt.Sprintf(`{"to":%q,"amount":"5","reason":"retry test"}`, bob) }},
		{name: "mint", path: "/api/v1/admin/mint", subject: admin, scopes: api.ScopeAdmin, idField: "id", status: 201,
			body: func(int) string { return `{"amount":"7","reason":"retry test"}` }},
		{name: "stake", path: "/api/v1/staking/stake", subject: alice, scopes: api.ScopeAgent, idField: "id", status: 201,
			body: func(int) string { return `{"tier":"flexible","amount":"11"}` }},
		{name: "slash", path: fmt.Sprintf("/api/v1/admin/enforcement/agents/%s/slash-stake", alice), subject: admin, scopes: api.ScopeAdmin,
			idField: "case_id", status: 200, before: stakeNow,
			body: func(n int) string { return fmt.Sprintf(`{"case_id":"case-%d","reason":"retry test"}`, n) }},
	}
	n := 0
	for _, o := range ops {
		call := func(key, body string) resp {
			return f.do(req{method: "POST", path: o.path, body: body, subject: o.subject, scopes: o.scopes, key: key})
		}
		id := func(r resp) string {
			t.Helper()
			var m map[string]any
			require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
			v, ok := m[o.idField]
			require.True(t, ok, "%s: no %s in %s", o.name, o.idField, r.body)
			return fmt.Sprint(v)
		}
		next := func() (string, string) {
			n++
			if o.before != nil {
				o.before(n)
			}
			return fmt.Sprintf("%s-%d", o.name, n), o.body(n)
		}

		// Retention: the record is gone, the business key answers.
		key, body := next()
		first := call(key, body)
		require.Equal(t, o.status, first.status, "%s: %s", o.name, first.body)
		state := f.stakingSnapshot()
		sweep()
		again := call(key, body)
		require.Equal(t, o.status, again.status, "%s retried after the sweep: %s", o.name, again.body)
		require.False(t, again.replayed, "%s: answered by the business key, not a stored response", o.name)
		require.Equal(t, id(first), id(again), "%s: the retry returns the original", o.name)
		require.Equal(t, state, f.stakingSnapshot(), "%s: nothing applied twice after the sweep", o.name)

		// A crash after the business commit, before the response was
		// stored: the claim stays without a response.
		key, body = next()
		first = call(key, body)
		require.Equal(t, o.status, first.status, "%s: %s", o.name, first.body)
		tag, err := f.pool.Exec(ctx, `UPDATE idempotency_keys SET status_code = NULL, response_body = NULL, completed_at = NULL
			WHERE scope = $1 AND key = $2`, o.subject, key)
		require.NoError(t, err)
		require.EqualValues(t, 1, tag.RowsAffected())
		state = f.stakingSnapshot()
		r := call(key, body)
		require.Equal(t, 409, r.status, "%s: in progress while the claim stands: %s", o.name, r.body)
		require.Equal(t, "conflict", r.errCode())
		sweep()
		again = call(key, body)
		require.Equal(t, o.status, again.status, "%s after the abandoned claim was swept: %s", o.name, again.body)
		require.Equal(t, id(first), id(again), "%s: the retry returns the original", o.name)
		require.Equal(t, state, f.stakingSnapshot(), "%s: nothing applied twice after a crash", o.name)
		require.Equal(t, o.status, call(key, body).status, "%s: the new record answers", o.name)

		// A crash before the business commit: only the claim was written.
		key, body = next()
		sum := sha256.Sum256([]byte("POST " + o.path + "\n" + body))
		claimed, _, err := db.NewIdempotencyStore(f.pool).Claim(ctx, o.subject, key, sum[:], "POST", o.path, time.Now())
		require.NoError(t, err)
		require.True(t, claimed)
		state = f.stakingSnapshot()
		r = call(key, body)
		require.Equal(t, 409, r.status, "%s: in progress while the claim stands: %s", o.name, r.body)
		require.Equal(t, state, f.stakingSnapshot(), "%s: nothing applied while claimed", o.name)
		sweep()
		done := call(key, body)
		require.Equal(t, o.status, done.status, "%s after the abandoned claim was swept: %s", o.name, done.body)
		applied := f.stakingSnapshot()
		require.NotEqual(t, state, applied, "%s: applied", o.name)
		replay := call(key, body)
		require.Equal(t, o.status, replay.status)
		require.True(t, replay.replayed)
		require.Equal(t, id(done), id(replay))
		require.Equal(t, applied, f.stakingSnapshot(), "%s: applied once", o.name)
	}
	// Exactly one business row per key, whatever the retries: three keys
	// per operation (and a stake before each slash).
	for _, c := range []struct {
		q, arg string
		want   int
	}{
		{`SELECT count(*) FROM holds WHERE account_id = $1 AND client_key LIKE 'hold-%'`, alice, 3},
		{`SELECT count(*) FROM supply_operations WHERE actor = $1 AND kind = 'grant'`, admin, 3},
		{`SELECT count(*) FROM supply_operations WHERE actor = $1 AND kind = 'mint'`, admin, 3},
		{`SELECT count(*) FROM stake_positions WHERE owner = $1 AND client_key LIKE 'stake-%'`, alice, 3},
		{`SELECT count(*) FROM stake_positions WHERE owner = $1 AND client_key LIKE 'pre-slash-%'`, alice, 3},
		{`SELECT count(*) FROM stake_slashes WHERE agent_did = $1`, alice, 3},
	} {
		var got int
		require.NoError(t, f.pool.QueryRow(ctx, c.q, c.arg).Scan(&got), c.q)
		require.Equal(t, c.want, got, c.q)
	}
}
