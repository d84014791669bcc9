package ledgerapi_test

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/proposals"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// fakeTallies stands in for Temporal: it records the tally workflows
// started; fail makes starting fail.
type fakeTallies struct {
	client.Client
	mu      sync.Mutex
	started map[string]string // workflow ID → proposal
	fail    bool
}

func (f *fakeTallies) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, name any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errors.New("temporal down")
	}
	in := args[0].(workflows.GovernanceTallyInput)
	if name != workflows.GovernanceTallyName {
		return nil, errors.New("unexpected workflow")
	}
	f.started[o.ID] = in.ProposalID
	return nil, nil
}

func newGovFixture(t *testing.T) (*fixture, *fakeTallies) {
	f := newFixture(t, false)
	ft := &fakeTallies{started: map[string]string{}}
	e := api.NewEngine(api.EngineOptions{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), MaxBodyBytes: 64 << 10})
	limits := governance.DefaultLimits
	limits.MinWindow = time.Minute
	ledgerapi.NewGovernance(ledgerapi.GovernanceOptions{
		Store: f.store, Idempotency: db.NewIdempotencyStore(f.pool), Auth: testAuth,
		Proposals: &proposals.Service{Ledger: f.store, Registry: "alpha-main", Temporal: ft, TaskQueue: "alpha-main", Limits: limits},
		Veto:      ledgerapi.OperatorVeto{Mainframe: true},
	}).Mount(e.Group("/api/v1"))
	f.h = e
	return f, ft
}

func (f *fixture) govSnapshot() string {
	f.t.Helper()
	var s string
	require.NoError(f.t, f.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM governance_proposals)::text || '/' || (SELECT count(*) FROM governance_snapshots)::text || '/' ||
		(SELECT count(*) FROM governance_votes)::text || '/' || (SELECT count(*) FROM governance_delegations)::text || '/' ||
		(SELECT count(*) FROM outbox)::text || '/' ||
		(SELECT coalesce(string_agg(id || state, ','), '') FROM governance_proposals)`).Scan(&s))
	return f.snapshot() + "|" + s
}

func (f *fixture) stakeFor(did, tier string, units int64) {
	f.t.Helper()
	_, err := f.store.Stake(context.Background(), ledgerstore.StakeRequest{Owner: did, Tier: tier, AmountUnits: units, IdempotencyKey: "s-" + tier})
	require.NoError(f.t, err)
}

const feeProposal = `{"title":"cheaper","body":"b","window_seconds":3600,"quorum_bps":3000,"threshold_bps":6000,"change":{"kind":"fee_curve","fee_curve":{"base_bps":20,"max_bps":300}}}`

// Bad input gets a clear 4xx and writes nothing.
func TestGovernanceRejectsBadRequests(t *testing.T) {
	t.Parallel()
	f, ft := newGovFixture(t)
	alice, poor := f.agent(1000*avt), f.agent(100*avt)
	f.stakeFor(alice, "365d", 400*avt)
	r := f.do(req{method: "POST", path: "/api/v1/governance/proposals", body: feeProposal, subject: alice, key: "p1"})
	require.Equal(t, 201, r.status, string(r.body))
	var p ledgerapi.ProposalResponse
	require.NoError(t, json.Unmarshal(r.body, &p))
	pid := p.ID.String()
	vote := "/api/v1/governance/proposals/" + pid + "/vote"

	before := f.govSnapshot()
	for i, c := range []struct {
		r      req
		status int
		code   string
	}{
		{req{method: "POST", path: "/api/v1/governance/proposals", body: feeProposal}, 401, "unauthenticated"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: feeProposal, subject: "dev:1", scopes: "developer", key: "a"}, 403, "forbidden"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: feeProposal, subject: alice}, 400, "invalid_argument"}, // no Idempotency-Key
		{req{method: "POST", path: "/api/v1/governance/proposals", body: feeProposal, subject: poor, key: "b"}, 422, "failed_precondition"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: `{"title":"x","window_seconds":1,"quorum_bps":3000,"threshold_bps":6000}`, subject: alice, key: "c"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: `{"title":"x","window_seconds":9223372036854775807,"quorum_bps":3000,"threshold_bps":6000}`, subject: alice, key: "d"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: `{"title":"x","window_seconds":99999999,"quorum_bps":3000,"threshold_bps":6000}`, subject: alice, key: "e"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: `{"title":"x","window_seconds":3600,"quorum_bps":0,"threshold_bps":6000}`, subject: alice, key: "f"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: `{"title":"x","window_seconds":3600,"quorum_bps":3000,"threshold_bps":10001}`, subject: alice, key: "g"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: `{"title":"x","window_seconds":3600,"quorum_bps":3000,"threshold_bps":4999}`, subject: alice, key: "h"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: `{"title":"","window_seconds":3600,"quorum_bps":3000,"threshold_bps":6000}`, subject: alice, key: "i"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: `{"title":"x","window_seconds":3600,"quorum_bps":3000,"threshold_bps":6000,"change":{"kind":"mint"}}`, subject: alice, key: "j"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: `{"title":"x","window_seconds":3600,"quorum_bps":3000,"threshold_bps":6000,"change":{"kind":"fee_curve","fee_curve":{"base_bps":10,"max_bps":501}}}`, subject: alice, key: "k"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/proposals", body: `{"title":"x","window_seconds":3600,"quorum_bps":3000,"threshold_bps":6000,"extra":1}`, subject: alice, key: "l"}, 400, "invalid_argument"},
		{req{method: "POST", path: vote, body: `{"choice":"yes"}`, subject: poor, key: "m"}, 422, "failed_precondition"},               // no stake
		{req{method: "POST", path: vote, body: `{"choice":"yes"}`, subject: "dev:1", scopes: "developer", key: "n"}, 403, "forbidden"}, // developer token
		{req{method: "POST", path: vote, body: `{"choice":"maybe"}`, subject: alice, key: "o"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/proposals/8c1b7a4e-0000-4000-8000-000000000000/vote", body: `{"choice":"yes"}`, subject: alice, key: "p"}, 404, "not_found"},
		{req{method: "POST", path: "/api/v1/governance/proposals/nope/vote", body: `{"choice":"yes"}`, subject: alice, key: "q"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/delegate", body: `{"delegate":"` + alice + `"}`, subject: alice, key: "r"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/delegate", body: `{"delegate":"treasury"}`, subject: alice, key: "s"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/delegate", body: `{"delegate":""}`, subject: alice, key: "t"}, 409, "conflict"}, // nothing to revoke
		{req{method: "POST", path: "/api/v1/governance/delegate", body: `{}`, subject: alice, key: "u"}, 400, "invalid_argument"},
		{req{method: "POST", path: "/api/v1/governance/proposals/" + pid + "/veto", body: `{"reason":"x"}`, subject: alice, key: "v"}, 403, "forbidden"},
		{req{method: "POST", path: "/api/v1/governance/proposals/" + pid + "/veto", body: `{"reason":"x"}`, subject: "admin:1", scopes: "admin", key: "w"}, 422, "failed_precondition"}, // open
		{req{method: "GET", path: "/api/v1/governance/power/treasury", subject: alice}, 400, "invalid_argument"},
		{req{method: "GET", path: "/api/v1/governance/proposals?state=weird", subject: alice}, 400, "invalid_argument"},
		{req{method: "GET", path: "/api/v1/governance/proposals/" + pid + "/votes/" + alice, subject: alice}, 404, "not_found"},
	} {
		got := f.do(c.r)
		require.Equal(t, c.status, got.status, "case %d: %s", i, got.body)
		require.Equal(t, c.code, got.errCode(), "case %d", i)
	}
	require.Equal(t, before, f.govSnapshot(), "refused requests wrote nothing")

	// A vote, then the same vote twice: the second is a 409 and writes nothing.
	r = f.do(req{method: "POST", path: vote, body: `{"choice":"yes"}`, subject: alice, key: "v1"})
	require.Equal(t, 200, r.status, string(r.body))
	before = f.govSnapshot()
	r = f.do(req{method: "POST", path: vote, body: `{"choice":"yes"}`, subject: alice, key: "v2"})
	require.Equal(t, 409, r.status)
	require.Equal(t, before, f.govSnapshot())
	// Changing it is allowed.
	r = f.do(req{method: "POST", path: vote, body: `{"choice":"no"}`, subject: alice, key: "v3"})
	require.Equal(t, 200, r.status)

	// The proposal's tally workflow was started with an ID from the proposal.
	require.Equal(t, pid, ft.started[workflows.GovernanceTallyWorkflowID("alpha-main", pid)])
}

// The read routes and a retried proposal that names the same proposal.
func TestGovernanceReadsAndReplays(t *testing.T) {
	t.Parallel()
	f, ft := newGovFixture(t)
	alice, bob := f.agent(1000*avt), f.agent(1000*avt)
	f.stakeFor(alice, "365d", 400*avt)
	f.stakeFor(bob, "90d", 100*avt)

	r := f.do(req{method: "GET", path: "/api/v1/governance/lock-options"})
	require.Equal(t, 200, r.status)
	var lo ledgerapi.LockOptionsResponse
	require.NoError(t, json.Unmarshal(r.body, &lo))
	require.Len(t, lo.Options, 6)
	require.Equal(t, "0.019", lo.Options[1].Multiplier)
	require.False(t, lo.Options[1].StakingTier)
	r = f.do(req{method: "GET", path: "/api/v1/governance/parameters"})
	require.Equal(t, 200, r.status)
	require.JSONEq(t, `{"fee_curve":{"base_bps":50,"max_bps":500},"staking_premiums":[{"tier":"flexible","premium_bps":0},`+
		`{"tier":"30d","premium_bps":140},{"tier":"90d","premium_bps":280},{"tier":"180d","premium_bps":390},{"tier":"365d","premium_bps":520}]}`, string(r.body))

	r = f.do(req{method: "POST", path: "/api/v1/governance/delegate", body: `{"delegate":"` + alice + `"}`, subject: bob, key: "d1"})
	require.Equal(t, 200, r.status, string(r.body))
	r = f.do(req{method: "GET", path: "/api/v1/governance/power/" + alice, subject: bob})
	require.Equal(t, 200, r.status)
	var pw ledgerapi.PowerResponse
	require.NoError(t, json.Unmarshal(r.body, &pw))
	// The real clock has moved a little since the stakes: power decays by
	// a unit per ~2.6 minutes of a 365 d lock of 400 AVT.
	require.InDelta(t, 200000, pw.Own, 2)
	require.InDelta(t, 24700, pw.Received, 2) // √(10^10) × 0.247 at the start of a 90 d lock
	require.Equal(t, 1, pw.Delegators)

	// Temporal down: 503, the proposal is recorded; the retry with the same
	// key finds it and starts its workflow.
	ft.fail = true
	r = f.do(req{method: "POST", path: "/api/v1/governance/proposals", body: feeProposal, subject: alice, key: "p1"})
	require.Equal(t, 503, r.status, string(r.body))
	ft.fail = false
	r = f.do(req{method: "POST", path: "/api/v1/governance/proposals", body: feeProposal, subject: alice, key: "p1"})
	require.Equal(t, 201, r.status, string(r.body))
	var p ledgerapi.ProposalResponse
	require.NoError(t, json.Unmarshal(r.body, &p))
	require.Equal(t, 1, f.count(`SELECT count(*) FROM governance_proposals`))
	require.Len(t, ft.started, 1)
	require.InDelta(t, 224700, p.Electorate, 4)

	r = f.do(req{method: "GET", path: "/api/v1/governance/proposals/" + p.ID.String(), subject: bob})
	require.Equal(t, 200, r.status)
	r = f.do(req{method: "GET", path: "/api/v1/governance/proposals?state=open", subject: bob})
	require.Equal(t, 200, r.status)
	var list ledgerapi.ProposalsResponse
	require.NoError(t, json.Unmarshal(r.body, &list))
	require.Len(t, list.Proposals, 1)
	r = f.do(req{method: "POST", path: "/api/v1/governance/proposals/" + p.ID.String() + "/vote", body: `{"choice":"abstain"}`, subject: alice, key: "v"})
	require.Equal(t, 200, r.status)
	r = f.do(req{method: "GET", path: "/api/v1/governance/proposals/" + p.ID.String() + "/votes/" + alice, subject: bob})
	require.Equal(t, 200, r.status)
	var v ledgerapi.VoteResponse
	require.NoError(t, json.Unmarshal(r.body, &v))
	require.Equal(t, "abstain", v.Choice)
	require.Equal(t, p.Electorate-v.OwnPower, v.ReceivedPower)
}

func (f *fixture) count(sql string) int {
	f.t.Helper()
	var n int
	require.NoError(f.t, f.pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}
