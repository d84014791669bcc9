package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// TestDisputesEndToEnd drives disputes over HTTP on a node with real
// Postgres, Temporal and Kafka: bad openings are refused with nothing
// written; a dispute opens (idempotently), the respondent answers, the
// tribunal rules for the complainant; the Dispute workflow mints the
// compensation once and the enforcer reactor slashes the respondent's
// stake once, case dispute-<id>; a second dispute ruled for the
// respondent charges the complainant's fee to the treasury. Every event
// reaches the EventStore and the supply audit stays at delta 0 with the
// compensation under its own term.
func TestDisputesEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	frame, reg := testRegistry(t)
	frame.GenesisSupplyUnits = 1_000_000 * avt
	dataDir := t.TempDir()
	n, err := node.Start(ctx, node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: dataDir, WriteAdminCredentials: true, Log: quietLog,
	})
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })
	t.Cleanup(func() { deleteSchedules(n, reg.ID) })
	c := httpClient{t, n.URL()}
	teg, es := n.Pools[db.RoleTEG], n.Pools[db.RoleEventStore]
	bucket := func(account, bucket string) int64 {
		t.Helper()
		var units int64
		require.NoError(t, teg.QueryRow(ctx, `SELECT units FROM balances WHERE account_id = $1 AND bucket = $2`, account, bucket).Scan(&units))
		return units
	}

	admin := c.adminToken(dataDir, reg.ID)
	dev, devTok := c.signUp("Ada", "ada@example.org")
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": dev.AccountID, "amount": "200", "reason": "bonds"}, nil))
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
	_, carolTok := newAgent()
	t.Cleanup(func() { terminateBonds(n, alice, bob) })
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": alice, "amount": "1000", "reason": "dispute e2e"}, nil))
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": bob, "amount": "200", "reason": "dispute e2e"}, nil))
	require.Equal(t, 201, c.call("POST", "/api/v1/staking/stake", bobTok, map[string]any{"tier": "flexible", "amount": "100"}, nil))
	var tr struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": bob, "amount": "100"}, &tr))

	// Bad input: a clear 4xx and nothing written.
	outbox := countWhere(t, teg, `SELECT count(*) FROM outbox`)
	open := func(tok string, body map[string]any) int {
		return c.call("POST", "/api/v1/disputes", tok, body, nil)
	}
	body := func(transfer string, claim int64) map[string]any {
		return map[string]any{"transfer_id": transfer, "claimed_units": claim, "evidence_ref": "https://evidence.example/" + transfer}
	}
	require.Equal(t, 403, open(devTok, body(tr.ID, avt)), "a developer token")
	require.Equal(t, 401, open("", body(tr.ID, avt)))
	require.Equal(t, 403, open(carolTok, body(tr.ID, avt)), "another's transfer")
	require.Equal(t, 400, open(aliceTok, body(tr.ID, 100*avt+1)), "more than the transfer")
	require.Equal(t, 404, open(aliceTok, body(uuid.NewString(), avt)), "unknown transfer")
	require.Equal(t, 400, open(aliceTok, body("not-a-uuid", avt)))
	require.Equal(t, 400, open(aliceTok, map[string]any{"transfer_id": tr.ID, "claimed_units": avt}), "no evidence")
	require.Zero(t, countWhere(t, teg, `SELECT count(*) FROM disputes`))
	require.Equal(t, outbox, countWhere(t, teg, `SELECT count(*) FROM outbox`))

	// Open, with an Idempotency-Key honoured.
	type disputeDTO struct {
		ID                string `json:"id"`
		Status            string `json:"status"`
		Respondent        string `json:"respondent"`
		Loser             string `json:"loser"`
		CompensationUnits int64  `json:"compensation_units"`
		FeeUnits          int64  `json:"fee_units"`
		SettledAt         string `json:"settled_at"`
	}
	var d, replay disputeDTO
	key := uuid.NewString()
	require.Equal(t, 201, callWithKey(t, c.base, "POST", "/api/v1/disputes", aliceTok, key, body(tr.ID, 60*avt), &d))
	require.Equal(t, bob, d.Respondent)
	require.Equal(t, "awaiting_response", d.Status)
	require.Equal(t, 201, callWithKey(t, c.base, "POST", "/api/v1/disputes", aliceTok, key, body(tr.ID, 60*avt), &replay))
	require.Equal(t, d.ID, replay.ID, "the same key replays")
	require.Equal(t, 409, callWithKey(t, c.base, "POST", "/api/v1/disputes", aliceTok, key, body(tr.ID, 50*avt), nil), "the same key, another request")
	require.Equal(t, 409, open(aliceTok, body(tr.ID, 60*avt)), "twice for the same transfer")
	require.Equal(t, 1, countWhere(t, teg, `SELECT count(*) FROM disputes`))
	wid := workflows.DisputeWorkflowID(d.ID)
	t.Cleanup(func() { _ = n.Temporal.TerminateWorkflow(context.Background(), wid, "", "test over") })
	desc, err := n.Temporal.DescribeWorkflow(ctx, wid, "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.RawResponse.WorkflowExecutionInfo.Status)

	// Answer, rule.
	require.Equal(t, 403, c.call("POST", "/api/v1/disputes/"+d.ID+"/response", aliceTok, map[string]any{"response_ref": "x"}, nil), "the complainant does not answer")
	require.Equal(t, 200, c.call("POST", "/api/v1/disputes/"+d.ID+"/response", bobTok, map[string]any{"response_ref": "https://evidence.example/answer"}, nil))
	ruling := map[string]any{"outcome": "complainant", "award_units": 50 * avt, "reason": "not delivered"}
	require.Equal(t, 403, c.call("POST", "/api/v1/admin/disputes/"+d.ID+"/ruling", aliceTok, ruling, nil), "only the tribunal rules")
	require.Equal(t, 400, c.call("POST", "/api/v1/admin/disputes/"+d.ID+"/ruling", admin, map[string]any{"outcome": "nobody", "reason": "r"}, nil))
	require.Equal(t, 400, c.call("POST", "/api/v1/admin/disputes/"+d.ID+"/ruling", admin, map[string]any{"outcome": "complainant", "award_units": 61 * avt, "reason": "r"}, nil), "award above the claim")
	require.Equal(t, 400, c.call("POST", "/api/v1/admin/disputes/not-an-id/ruling", admin, ruling, nil))
	require.Equal(t, 404, c.call("POST", "/api/v1/admin/disputes/"+uuid.NewString()+"/ruling", admin, ruling, nil))
	stakedBefore, treasuryBefore, aliceBefore := bucket(bob, "staked"), bucket("treasury", "liquid"), bucket(alice, "liquid")
	require.Equal(t, 100*avt, stakedBefore)
	require.Equal(t, 200, c.call("POST", "/api/v1/admin/disputes/"+d.ID+"/ruling", admin, ruling, nil))

	// The workflow settles the compensation; the reactor slashes bob.
	require.Eventually(t, func() bool {
		var got disputeDTO
		return c.call("GET", "/api/v1/disputes/"+d.ID, aliceTok, nil, &got) == 200 && got.SettledAt != ""
	}, 60*time.Second, 200*time.Millisecond, "compensation settled")
	require.Equal(t, aliceBefore+50*avt, bucket(alice, "liquid"), "compensation minted to the complainant")
	require.Eventually(t, func() bool {
		return countWhere(t, teg, `SELECT count(*) FROM stake_slashes WHERE case_id = $1 AND agent_did = $2`, "dispute-"+d.ID, bob) == 1
	}, 60*time.Second, 200*time.Millisecond, "the loser's stake slashed")
	require.Zero(t, bucket(bob, "staked"))
	require.Equal(t, treasuryBefore+10*avt, bucket("treasury", "liquid"), "10 % penalty to the treasury")
	var got disputeDTO
	require.Equal(t, 404, c.call("GET", "/api/v1/disputes/"+d.ID, carolTok, nil, nil), "not a party")
	require.Equal(t, 409, c.call("POST", "/api/v1/disputes/"+d.ID+"/response", bobTok, map[string]any{"response_ref": "https://evidence.example/late"}, nil), "answered once")
	require.Equal(t, 409, c.call("POST", "/api/v1/admin/disputes/"+d.ID+"/ruling", admin, map[string]any{"outcome": "respondent", "reason": "changed my mind"}, nil), "ruled once")
	require.Equal(t, 200, c.call("GET", "/api/v1/disputes/"+d.ID, admin, nil, &got))
	require.Equal(t, bob, got.Loser)
	require.EqualValues(t, 50*avt, got.CompensationUnits)
	var list struct {
		Disputes []disputeDTO `json:"disputes"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/disputes", bobTok, nil, &list))
	require.Len(t, list.Disputes, 1)

	// Bob disputes the same transfer and loses: his fee (5 % of 20 AVT)
	// goes to the treasury; nobody is slashed for it.
	var d2 disputeDTO
	require.Equal(t, 201, c.call("POST", "/api/v1/disputes", bobTok, body(tr.ID, 20*avt), &d2))
	t.Cleanup(func() {
		_ = n.Temporal.TerminateWorkflow(context.Background(), workflows.DisputeWorkflowID(d2.ID), "", "test over")
	})
	treasuryBefore = bucket("treasury", "liquid")
	require.Equal(t, 200, c.call("POST", "/api/v1/admin/disputes/"+d2.ID+"/ruling", admin, map[string]any{"outcome": "respondent", "reason": "frivolous"}, nil))
	require.Eventually(t, func() bool {
		var g disputeDTO
		return c.call("GET", "/api/v1/disputes/"+d2.ID, bobTok, nil, &g) == 200 && g.SettledAt != "" && g.FeeUnits == avt
	}, 60*time.Second, 200*time.Millisecond, "fee charged")
	require.Equal(t, treasuryBefore+avt, bucket("treasury", "liquid"))

	// Everything reached the EventStore; the audit is exact.
	outbox = countWhere(t, teg, `SELECT count(*) FROM outbox`)
	require.Eventually(t, func() bool {
		return countWhere(t, es, `SELECT count(*) FROM events WHERE source = 'teg'`) == outbox
	}, 30*time.Second, 100*time.Millisecond, "all %d TEG events reach the EventStore", outbox)
	for typ, want := range map[string]int{"DisputeOpened": 2, "DisputeResponded": 1, "DisputeRuled": 2, "DisputeCompensationMinted": 1, "DisputeFeeCharged": 1, "StakeSlashed": 1} {
		require.Equal(t, want, countWhere(t, es, `SELECT count(*) FROM events WHERE event_type = $1`, typ), typ)
	}
	require.Zero(t, countWhere(t, es, `SELECT count(*) FROM quarantine`), "nothing quarantined")
	rep, err := ingest.Audit(ctx, es, frame.ID)
	require.NoError(t, err)
	require.Zero(t, rep.Delta, "%+v", rep)
	require.Equal(t, 50*avt, rep.CompensationIssued, "compensation counted as issuance, its own term")
	require.Equal(t, frame.GenesisSupplyUnits, rep.TokensIssued)
	re, err := ingest.Replay(ctx, es, frame.ID)
	require.NoError(t, err)
	require.True(t, re.OK, "%+v", re)

	resp, err := http.Get(n.URL() + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{"disputes_opened_total 2", `disputes_ruled_total{outcome="complainant"} 1`, `disputes_ruled_total{outcome="respondent"} 1`, "dispute_stake_slashes_total 1"} {
		require.Contains(t, string(metrics), "\n"+line+"\n")
	}
}

// callWithKey is httpClient.call with a chosen Idempotency-Key.
func callWithKey(t *testing.T, base, method, path, token, key string, body, out any) int {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, base+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		require.NoError(t, json.Unmarshal(b, out), string(b))
	}
	return resp.StatusCode
}
