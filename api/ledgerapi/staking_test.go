package ledgerapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/stakes"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// fakeCooldowns stands in for Temporal: it records the cooldown and
// lock-expiry workflows started, by position; fail makes starting fail.
type fakeCooldowns struct {
	client.Client
	t       *testing.T
	mu      sync.Mutex
	started map[int64]time.Time
	locks   map[int64]time.Time
	fail    bool
}

func (f *fakeCooldowns) ExecuteWorkflow(_ context.Context, _ client.StartWorkflowOptions, name any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errors.New("temporal down")
	}
	switch in := args[0].(type) {
	case workflows.LockExpiryInput:
		require.Equal(f.t, workflows.LockExpiryName, name)
		f.locks[in.PositionID] = in.UnlockAt
	case workflows.UnstakeCooldownInput:
		require.Equal(f.t, workflows.UnstakeCooldownName, name)
		f.started[in.PositionID] = in.ReleaseAt
	default:
		f.t.Errorf("unexpected workflow %v", name)
	}
	return nil, nil
}

func newStakingFixture(t *testing.T) (*fixture, *fakeCooldowns) {
	f := newFixture(t, false)
	cd := &fakeCooldowns{t: t, started: map[int64]time.Time{}, locks: map[int64]time.Time{}}
	e := api.NewEngine(api.EngineOptions{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), MaxBodyBytes: 64 << 10})
	ledgerapi.NewStaking(ledgerapi.StakingOptions{
		Store: f.store, Idempotency: db.NewIdempotencyStore(f.pool), Auth: testAuth,
		Stakes: &stakes.Service{Ledger: f.store, Registry: "alpha-main", Temporal: cd, TaskQueue: "alpha-main"},
	}).Mount(e.Group("/api/v1"))
	f.h = e
	return f, cd
}

func (f *fixture) stakingSnapshot() string {
	f.t.Helper()
	var s string
	require.NoError(f.t, f.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM stake_positions)::text || '/' || (SELECT count(*) FROM unstake_requests)::text || '/' ||
		(SELECT count(*) FROM stake_slashes)::text || '/' || (SELECT count(*) FROM staking_validators)::text`).Scan(&s))
	return f.snapshot() + "|" + s
}

// Bad requests get the right 4xx and write nothing.
func TestStakingRejectsBadRequests(t *testing.T) {
	t.Parallel()
	f, _ := newStakingFixture(t)
	alice, other := f.agent(100*avt), f.agent(0)
	before := f.stakingSnapshot()
	for i, c := range []struct {
		r      req
		status int
		code   string
	}{
		{req{method: "POST", path: "/api/v1/staking/stake", body: `{"tier":"flexible","amount":"10"}`}, 401, "unauthenticated"},
		{req{method: "POST", path: "/api/v1/staking/stake", body: `{"tier":"flexible","amount":"10"}`, subject: "dev:1", scopes: "developer"}, 403, "forbidden"},
		{req{method: "POST", path: "/api/v1/staking/stake", body: `{"tier":"flexible","amount":"10"}`, subject: alice}, 400, "invalid_argument"}, // no Idempotency-Key
		{req{method: "POST", path: "/api/v1/staking/stake", body: `{"tier":"flexible","amount":"9.99999999"}`, subject: alice, key: "a"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/staking/stake", body: `{"tier":"7d","amount":"10"}`, subject: alice, key: "b"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/staking/stake", body: `{"amount":"10"}`, subject: alice, key: "c"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/staking/stake", body: `{"tier":"flexible","amount":"10","extra":1}`, subject: alice, key: "d"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/staking/stake", body: `{"tier":"flexible","amount":"100.00000001"}`, subject: alice, key: "e"}, 422, "insufficient_funds"},
		{req{method: "POST", path: "/api/v1/staking/positions/abc/unstake", body: `{}`, subject: alice, key: "f"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/staking/positions/99/unstake", body: `{}`, subject: alice, key: "g"}, 404, "not_found"},
		{req{method: "POST", path: "/api/v1/staking/validator", body: `{"commission_bps":10001,"accepting":true}`, subject: alice, key: "h"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/staking/validator", body: `{"accepting":true}`, subject: alice, key: "i"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/admin/enforcement/agents/" + alice + "/slash-stake", body: `{"case_id":"c1","reason":"x"}`, subject: alice, key: "j"}, 403, "forbidden"},
		{req{method: "POST", path: "/api/v1/admin/enforcement/agents/" + alice + "/slash-stake", body: `{"reason":"x"}`, subject: "admin:1", scopes: "admin", key: "k"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/admin/enforcement/agents/treasury/slash-stake", body: `{"case_id":"c1","reason":"x"}`, subject: "admin:1", scopes: "admin", key: "l"}, 400, "invalid_argument"},
		{req{method: "GET", path: "/api/v1/staking/positions?agent=" + other, subject: alice}, 403, "forbidden"},
		{req{method: "GET", path: "/api/v1/staking/rewards?cursor=nope", subject: alice}, 400, "invalid_argument"},
	} {
		got := f.do(c.r)
		require.Equal(t, c.status, got.status, "case %d: %s", i, got.body)
		require.Equal(t, c.code, got.errCode(), "case %d", i)
	}
	require.Equal(t, before, f.stakingSnapshot(), "nothing written")
}

func TestStakeUnstakeOverHTTP(t *testing.T) {
	t.Parallel()
	f, cd := newStakingFixture(t)
	alice := f.agent(100 * avt)

	r := f.do(req{method: "GET", path: "/api/v1/staking/apy-tiers"})
	require.Equal(t, 200, r.status, "public")
	var tiers ledgerapi.APYTiersResponse
	require.NoError(t, json.Unmarshal(r.body, &tiers))
	require.Len(t, tiers.Tiers, 5)
	require.Equal(t, "21.67", tiers.Tiers[0].APY, "nothing staked yet: the curve's top")
	require.Equal(t, "26.87", tiers.Tiers[4].APY)

	stake := req{method: "POST", path: "/api/v1/staking/stake", body: `{"tier":"flexible","amount":"40"}`, subject: alice, key: "s1"}
	r = f.do(stake)
	require.Equal(t, 201, r.status, string(r.body))
	var p ledgerapi.PositionResponse
	require.NoError(t, json.Unmarshal(r.body, &p))
	require.Equal(t, 40*avt, p.PrincipalUnits)
	again := f.do(stake)
	require.Equal(t, 201, again.status)
	require.True(t, again.replayed)

	// The cooldown cannot be scheduled: 503, and a retry schedules it.
	cd.fail = true
	unstake := req{method: "POST", path: fmt.Sprintf("/api/v1/staking/positions/%d/unstake", p.ID), body: `{}`, subject: alice, key: "u1"}
	r = f.do(unstake)
	require.Equal(t, 503, r.status, string(r.body))
	cd.fail = false
	r = f.do(unstake)
	require.Equal(t, 202, r.status, string(r.body))
	var un ledgerapi.UnstakeResponse
	require.NoError(t, json.Unmarshal(r.body, &un))
	require.Equal(t, "cooldown", un.Position.Status)
	require.Equal(t, un.Request.ReleasesAt, cd.started[p.ID])

	r = f.do(req{method: "GET", path: "/api/v1/staking/unstake-requests", subject: alice})
	require.Equal(t, 200, r.status)
	require.Contains(t, string(r.body), `"status":"pending"`)
	r = f.do(req{method: "GET", path: fmt.Sprintf("/api/v1/staking/positions/%d", p.ID), subject: f.agent(0)})
	require.Equal(t, 404, r.status, "other agents do not see it")
	r = f.do(req{method: "GET", path: fmt.Sprintf("/api/v1/staking/positions/%d", p.ID), subject: "admin:1", scopes: "admin"})
	require.Equal(t, 200, r.status)
}

// A locked stake starts its lock-expiry workflow with the term end; when
// it cannot be started the stake (already recorded) answers 503 and a
// retry with the same key replays it and starts the workflow. A flexible
// stake starts none.
func TestLockedStakeStartsItsLockExpiry(t *testing.T) {
	t.Parallel()
	f, cd := newStakingFixture(t)
	alice := f.agent(100 * avt)

	cd.fail = true
	stake := req{method: "POST", path: "/api/v1/staking/stake", body: `{"tier":"90d","amount":"40"}`, subject: alice, key: "l1"}
	r := f.do(stake)
	require.Equal(t, 503, r.status, string(r.body))
	require.Contains(t, string(r.body), "lock expiry could not be scheduled")
	cd.fail = false
	r = f.do(stake)
	require.Equal(t, 201, r.status, string(r.body))
	var p ledgerapi.PositionResponse
	require.NoError(t, json.Unmarshal(r.body, &p))
	require.NotNil(t, p.UnlockAt)
	require.Nil(t, p.MaturedAt)
	require.Equal(t, *p.UnlockAt, cd.locks[p.ID])
	require.Equal(t, p.CreatedAt.AddDate(0, 0, 90), *p.UnlockAt)
	var positions int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM stake_positions WHERE owner = $1`, alice).Scan(&positions))
	require.Equal(t, 1, positions, "the retry replayed the recorded stake")

	r = f.do(req{method: "POST", path: "/api/v1/staking/stake", body: `{"tier":"flexible","amount":"10"}`, subject: alice, key: "l2"})
	require.Equal(t, 201, r.status, string(r.body))
	require.Len(t, cd.locks, 1, "no lock expiry for the flexible tier")
}
