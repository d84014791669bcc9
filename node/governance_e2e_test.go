package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// TestGovernanceEndToEnd drives a local proposal over HTTP on a node with
// real Postgres, Temporal and Kafka: agents stake, one proposes an
// executable fee change, votes are cast (a developer token and a voter
// without stake are refused), the GovernanceTally workflow tallies at the
// window's end and enacts after the veto window, the next transfer pays
// the new fee, a second passed proposal vetoed by the mainframe's operator
// is never enacted, a proposal whose workflow was lost is tallied by the
// sweep, every governance event reaches the EventStore and the
// supply audit stays at delta 0.
func TestGovernanceEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	frame, reg := testRegistry(t)
	frame.GenesisSupplyUnits = 1_000_000 * avt
	dataDir := t.TempDir()
	limits := governance.DefaultLimits
	limits.MinWindow, limits.VetoWindow = time.Second, 6*time.Second
	n, err := node.Start(ctx, node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: dataDir, WriteAdminCredentials: true, Log: quietLog,
		GovernanceSettings: config.GovernanceSettings{Limits: limits},
	})
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })
	t.Cleanup(func() { deleteSchedules(n, reg.ID) })
	// The sweep's schedule is paused so that the lost proposal below stays
	// open until the test runs the sweep itself: under load the test can
	// outlast a scheduled minute, and then the "still open" check would
	// race the schedule.
	sweep := n.Temporal.ScheduleClient().GetHandle(ctx, workflows.GovernanceTallySweepSchedule.ID(reg.ID))
	require.NoError(t, sweep.Pause(ctx, client.SchedulePauseOptions{Note: "TestGovernanceEndToEnd runs the sweep itself"}))
	c := httpClient{t, n.URL()}
	teg, es := n.Pools[db.RoleTEG], n.Pools[db.RoleEventStore]

	admin := c.adminToken(dataDir, reg.ID)
	dev, devTok := c.signUp("Ada", "ada@example.org")
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": dev.AccountID, "amount": "150", "reason": "bonds"}, nil))
	newAgent := func() (string, string) {
		var bt struct {
			Token string `json:"bootstrap_token"`
		}
		require.Equal(t, 201, c.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
		var ag struct {
			DID          string `json:"did"`
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		require.Equal(t, 201, c.call("POST", "/api/v1/agents", bt.Token, map[string]any{}, &ag))
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		require.Equal(t, 200, c.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": ag.ClientID, "client_secret": ag.ClientSecret}, &tok))
		return ag.DID, tok.AccessToken
	}
	alice, aliceTok := newAgent()
	bob, bobTok := newAgent()
	carol, carolTok := newAgent()
	t.Cleanup(func() { terminateBonds(n, alice, bob, carol) })
	for _, a := range []string{alice, bob, carol} {
		require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": a, "amount": "1000", "reason": "governance e2e"}, nil))
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/staking/stake", aliceTok, map[string]any{"tier": "365d", "amount": "400"}, nil))
	require.Equal(t, 201, c.call("POST", "/api/v1/staking/stake", bobTok, map[string]any{"tier": "365d", "amount": "100"}, nil))

	var params struct {
		FeeCurve struct {
			BaseBps int64 `json:"base_bps"`
			MaxBps  int64 `json:"max_bps"`
		} `json:"fee_curve"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/governance/parameters", "", nil, &params))
	require.EqualValues(t, 50, params.FeeCurve.BaseBps)

	proposal := map[string]any{"title": "cheaper transfers", "body": "halve the fee", "window_seconds": 4, "quorum_bps": 5000, "threshold_bps": 6000,
		"change": map[string]any{"kind": "fee_curve", "fee_curve": map[string]any{"base_bps": 10, "max_bps": 200}}}
	require.Equal(t, 403, c.call("POST", "/api/v1/governance/proposals", devTok, proposal, nil), "a developer token cannot propose")
	require.Equal(t, 422, c.call("POST", "/api/v1/governance/proposals", carolTok, proposal, nil), "no stake, no proposal")
	var p struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/governance/proposals", aliceTok, proposal, &p))
	// A second one, to be vetoed by the operator once it has passed.
	vetoed := map[string]any{"title": "free transfers", "window_seconds": 4, "quorum_bps": 5000, "threshold_bps": 6000,
		"change": map[string]any{"kind": "fee_curve", "fee_curve": map[string]any{"base_bps": 0, "max_bps": 0}}}
	var pv struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/governance/proposals", bobTok, vetoed, &pv))
	require.Equal(t, 200, c.call("POST", "/api/v1/governance/proposals/"+pv.ID+"/vote", aliceTok, map[string]any{"choice": "yes"}, nil))
	votePath := "/api/v1/governance/proposals/" + p.ID + "/vote"
	require.Equal(t, 403, c.call("POST", votePath, devTok, map[string]any{"choice": "yes"}, nil), "a developer token cannot vote")
	require.Equal(t, 422, c.call("POST", votePath, carolTok, map[string]any{"choice": "yes"}, nil), "no stake, no vote")
	require.Equal(t, 200, c.call("POST", votePath, aliceTok, map[string]any{"choice": "yes"}, nil))
	require.Equal(t, 200, c.call("POST", votePath, bobTok, map[string]any{"choice": "no"}, nil))
	require.Equal(t, 409, c.call("POST", votePath, bobTok, map[string]any{"choice": "no"}, nil), "the same vote twice")

	// A third proposal whose workflow is lost (terminated, as with its
	// namespace): the sweep, run once its window has ended, starts its
	// tally again.
	lost := map[string]any{"title": "lost", "window_seconds": 2, "quorum_bps": 5000, "threshold_bps": 5000}
	var pl struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/governance/proposals", aliceTok, lost, &pl))
	require.NoError(t, n.Temporal.TerminateWorkflow(ctx, workflows.GovernanceTallyWorkflowID(reg.ID, pl.ID), "", "lost with its namespace"))

	// The operator vetoes the second within its veto window.
	var vs struct {
		State string `json:"state"`
	}
	require.Eventually(t, func() bool {
		require.Equal(t, 200, c.call("GET", "/api/v1/governance/proposals/"+pv.ID, bobTok, nil, &vs))
		return vs.State != governance.StateOpen
	}, 60*time.Second, 100*time.Millisecond)
	require.Equal(t, governance.StatePassed, vs.State)
	vetoPath := "/api/v1/governance/proposals/" + pv.ID + "/veto"
	require.Equal(t, 403, c.call("POST", vetoPath, aliceTok, map[string]any{"reason": "mine"}, nil), "an agent cannot veto")
	require.Equal(t, 200, c.call("POST", vetoPath, admin, map[string]any{"reason": "would zero the fee collector's income"}, &vs))
	require.Equal(t, governance.StateVetoed, vs.State)
	require.Eventually(t, func() bool {
		d, err := n.Temporal.DescribeWorkflow(ctx, workflows.GovernanceTallyWorkflowID(reg.ID, pv.ID), "")
		return err == nil && d.RawResponse.WorkflowExecutionInfo.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	}, 60*time.Second, 200*time.Millisecond, "the vetoed proposal's workflow ends without enacting")

	var got struct {
		State string `json:"state"`
		Tally *struct {
			Yes    int64 `json:"yes_power"`
			No     int64 `json:"no_power"`
			Passed bool  `json:"passed"`
		} `json:"tally"`
	}
	require.Eventually(t, func() bool {
		require.Equal(t, 200, c.call("GET", "/api/v1/governance/proposals/"+p.ID, bobTok, nil, &got))
		return got.State == governance.StateEnacted
	}, 60*time.Second, 200*time.Millisecond, "the proposal passes and is enacted")
	require.True(t, got.Tally.Passed)
	require.Greater(t, got.Tally.Yes, got.Tally.No)
	require.Equal(t, 422, c.call("POST", votePath, bobTok, map[string]any{"choice": "yes"}, nil), "after the window")
	desc, err := n.Temporal.DescribeWorkflow(ctx, workflows.GovernanceTallyWorkflowID(reg.ID, p.ID), "")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		desc, err = n.Temporal.DescribeWorkflow(ctx, workflows.GovernanceTallyWorkflowID(reg.ID, p.ID), "")
		return err == nil && desc.RawResponse.WorkflowExecutionInfo.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	}, 30*time.Second, 200*time.Millisecond)

	require.Equal(t, 200, c.call("GET", "/api/v1/governance/parameters", "", nil, &params))
	require.EqualValues(t, 10, params.FeeCurve.BaseBps)
	require.EqualValues(t, 200, params.FeeCurve.MaxBps, "the vetoed change was never applied")
	var tr struct {
		FeeBps   int64 `json:"fee_bps"`
		FeeUnits int64 `json:"fee_units"`
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/transfers", carolTok, map[string]any{"to": bob, "amount": "100"}, &tr))
	require.EqualValues(t, 10, tr.FeeBps, "the next transfer pays the governed base rate")
	require.Equal(t, 100*avt*10/10_000, tr.FeeUnits)

	var ls struct {
		State string `json:"state"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/governance/proposals/"+pl.ID, aliceTok, nil, &ls))
	require.Equal(t, governance.StateOpen, ls.State, "nothing tallied the lost proposal")
	// The sweep the schedule runs every minute, started directly: a
	// triggered action can wait a minute for the shared dev server's
	// scheduler under load.
	_, err = n.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "governance-sweep-now-" + reg.ID, TaskQueue: reg.TaskQueue()},
		workflows.GovernanceTallySweepName, workflows.GovernanceTallySweepInput{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		require.Equal(t, 200, c.call("GET", "/api/v1/governance/proposals/"+pl.ID, aliceTok, nil, &ls))
		return ls.State != governance.StateOpen
	}, 60*time.Second, 200*time.Millisecond, "the sweep restarted the lost proposal's tally")
	require.Equal(t, governance.StateRejected, ls.State, "nobody voted: no quorum")

	var outboxRows int
	require.NoError(t, teg.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outboxRows))
	require.Eventually(t, func() bool {
		return countWhere(t, es, `SELECT count(*) FROM events WHERE source = 'teg'`) == outboxRows
	}, 30*time.Second, 100*time.Millisecond, "all %d TEG events reach the EventStore", outboxRows)
	for typ, want := range map[string]int{"ProposalCreated": 3, "VoteCast": 3, "ProposalTallied": 3, "ProposalEnacted": 1, "ProposalVetoed": 1} {
		require.Equal(t, want, countWhere(t, es, `SELECT count(*) FROM events WHERE event_type = $1`, typ), typ)
	}
	require.Zero(t, countWhere(t, es, `SELECT count(*) FROM quarantine`), "nothing quarantined")
	rep, err := ingest.Audit(ctx, es, frame.ID)
	require.NoError(t, err)
	require.Zero(t, rep.Delta, "%+v", rep)
}
