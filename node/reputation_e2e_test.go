package node_test

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/reputation"
	"github.com/theprotocol-dev/theprotocol/reputation/eigentrust"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

type trustScore struct {
	AgentDID string  `json:"agent_did"`
	Score    float64 `json:"score"`
	TrustBps int64   `json:"trust_bps"`
	Rank     int     `json:"rank"`
	RunID    string  `json:"run_id"`
}

// TestReputationEndToEnd: agents pay each other through the API; a
// reputation run started through the node's Schedule scores them; the
// scores are served; the bond of the agent others paid matures on the
// default trust floor (5000 bps) while a fresh agent's, with the same
// activity but nobody's trust, keeps waiting; the run's published digest
// is recomputed from its served inputs; a second run merges only the new
// transfers and its graph equals a full recomputation's.
func TestReputationEndToEnd(t *testing.T) {
	ctx := context.Background()
	n, reg, dataDir, c := startBondNodeTrust(t, config.DefaultBondSettings().MinTrust) // 5000 bps
	teg, es := n.Pools[db.RoleTEG], n.Pools[db.RoleEventStore]
	bucket := func(account, b string) int64 { return bucketUnits(t, teg, account, b) }
	admin := c.adminToken(dataDir, reg.ID)
	dev, devTok := c.signUp("Ada", "ada@example.org")
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": dev.AccountID, "amount": "250", "reason": "reputation e2e"}, nil))
	agent := func() (string, string) {
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
		t.Cleanup(func() { terminateBonds(n, ag.DID) })
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		require.Equal(t, 200, c.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": ag.ClientID, "client_secret": ag.ClientSecret}, &tok))
		require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": ag.DID, "amount": "10", "reason": "reputation e2e"}, nil))
		return ag.DID, tok.AccessToken
	}
	trusted, trustedTok := agent()
	fresh, freshTok := agent()
	payer1, payer1Tok := agent()
	_, payer2Tok := agent()
	pay := func(tok, to, amount string) string {
		var tr struct {
			ID string `json:"id"`
		}
		require.Equal(t, 201, c.call("POST", "/api/v1/transfers", tok, map[string]any{"to": to, "amount": amount}, &tr))
		return tr.ID
	}
	// Both bonded agents send one transfer (the test's activity minimum);
	// only `trusted` is paid by others. By hand (α = 0.15, p = 1/4, no
	// dangling row): payer2 and fresh hold 0.0375 each, trusted and payer1
	// 0.4625, so trusted earned 1 − 0.0375/0.4625 ≈ 9189 bps, fresh 0.
	pay(payer1Tok, trusted, "2")
	disputed := pay(payer2Tok, trusted, "2")
	pay(trustedTok, payer1, "1")
	pay(freshTok, payer1, "1")
	waitTransfersLogged(t, es, 4)

	// No run yet: nobody has a score.
	require.Equal(t, 404, c.call("GET", "/api/v1/reputation/"+trusted+"/trust-score", "", nil, nil))
	require.Equal(t, 400, c.call("GET", "/api/v1/reputation/not-a-did/trust-score", "", nil, nil))

	// runAfter triggers the node's reputation Schedule until a run newer
	// than prev is stored, and returns it. (A run is named by the
	// schedule's ID and the trigger's second: two triggers within one
	// second are one run, so it triggers again a second later.)
	sched := n.Temporal.ScheduleClient().GetHandle(ctx, workflows.ReputationSchedule.ID(reg.ID))
	runAfter := func(prev string) string {
		var latest struct {
			RunID string `json:"run_id"`
		}
		require.Eventually(t, func() bool {
			if c.call("GET", "/api/v1/reputation/runs/latest", "", nil, &latest) == 200 && latest.RunID != prev {
				return true
			}
			_ = sched.Trigger(ctx, client.ScheduleTriggerOptions{})
			return false
		}, 90*time.Second, 1100*time.Millisecond, "a scheduled run after %q", prev)
		return latest.RunID
	}
	run1 := runAfter("")
	var ts trustScore
	require.Equal(t, 200, c.call("GET", "/api/v1/reputation/"+trusted+"/trust-score", "", nil, &ts))
	require.Equal(t, run1, ts.RunID)
	require.GreaterOrEqual(t, ts.TrustBps, int64(5000), "trusted is paid by two agents")
	require.LessOrEqual(t, ts.Rank, 2, "trusted and payer1 pay each other: the top two")
	var fs trustScore
	require.Equal(t, 200, c.call("GET", "/api/v1/reputation/"+fresh+"/trust-score", "", nil, &fs))
	require.Zero(t, fs.TrustBps, "nobody pays fresh")
	require.Less(t, fs.Score, ts.Score)

	// The bond of the trusted agent matures; the fresh one's waits on trust.
	require.Eventually(t, func() bool { return bucket(trusted, "locked_bond") == 0 }, 60*time.Second, 200*time.Millisecond, "trusted's bond matured")
	var st struct {
		State      string `json:"state"`
		Checks     int    `json:"checks"`
		LastReason string `json:"last_reason"`
	}
	require.Eventually(t, func() bool {
		return c.call("GET", "/api/v1/agents/"+fresh+"/reputation-bond", freshTok, nil, &st) == 200 && st.Checks >= 3
	}, 30*time.Second, 200*time.Millisecond)
	require.Equal(t, "locked", st.State)
	require.Equal(t, "trust score below the floor", st.LastReason)
	require.Equal(t, 50*avt, bucket(fresh, "locked_bond"))

	// Anyone can recompute the run from what is served.
	var run struct {
		Digest      string            `json:"digest"`
		InputDigest string            `json:"input_digest"`
		Params      reputation.Params `json:"params"`
		Agents      int               `json:"agents"`
		Converged   bool              `json:"converged"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/reputation/runs/"+run1, "", nil, &run))
	require.Equal(t, 4, run.Agents)
	require.True(t, run.Converged)
	require.Equal(t, 404, c.call("GET", "/api/v1/reputation/runs/no-such-run", "", nil, nil))
	require.Equal(t, 400, c.call("GET", "/api/v1/reputation/runs/a%20b", "", nil, nil))
	blob := get(t, c.base+"/api/v1/reputation/runs/"+run1+"/graph")
	got, ok, err := reputation.Verify(blob, run.Params, run.InputDigest, run.Digest)
	require.NoError(t, err)
	require.True(t, ok, "recomputed %s, published %s", got, run.Digest)
	var published int
	require.NoError(t, es.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_type = 'TrustScoresPublished'`).Scan(&published))
	require.Equal(t, 1, published)

	// A second run merges only the new transfer, and its graph is the
	// graph of every event read afresh.
	pay(payer2Tok, fresh, "1")
	waitTransfersLogged(t, es, 5)
	var run2 struct {
		RunID        string `json:"run_id"`
		PrevRunID    string `json:"prev_run_id"`
		EventsMerged int64  `json:"events_merged"`
		InputDigest  string `json:"input_digest"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/reputation/runs/"+runAfter(run1), "", nil, &run2))
	require.Equal(t, run1, run2.PrevRunID)
	require.EqualValues(t, 1, run2.EventsMerged, "only the new transfer is merged")
	store := ingest.NewReputationStore(es, nil)
	all, _, err := store.ReadSince(ctx, ingest.ReputationScan{}, time.Now())
	require.NoError(t, err)
	g := eigentrust.NewGraph()
	reputation.Apply(g, all)
	full := g.InputDigest()
	require.Equal(t, hex.EncodeToString(full[:]), run2.InputDigest, "incremental graph = full recomputation")
	require.Equal(t, 200, c.call("GET", "/api/v1/reputation/"+fresh+"/trust-score", "", nil, &fs))
	require.Positive(t, fs.TrustBps, "fresh is paid now")

	// payer2 wins a dispute over its payment to trusted: at the next run
	// trusted's score falls (payer2's trust in it drops by the claim,
	// everyone's is halved).
	var before trustScore
	require.Equal(t, 200, c.call("GET", "/api/v1/reputation/"+trusted+"/trust-score", "", nil, &before))
	var d struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/disputes", payer2Tok, map[string]any{"transfer_id": disputed, "claimed_units": 2 * avt, "evidence_ref": "https://evidence.example/" + disputed}, &d))
	t.Cleanup(func() {
		_ = n.Temporal.TerminateWorkflow(context.Background(), workflows.DisputeWorkflowID(d.ID), "", "test over")
	})
	require.Equal(t, 200, c.call("POST", "/api/v1/disputes/"+d.ID+"/response", trustedTok, map[string]any{"response_ref": "https://evidence.example/answer"}, nil))
	require.Equal(t, 200, c.call("POST", "/api/v1/admin/disputes/"+d.ID+"/ruling", admin, map[string]any{"outcome": "complainant", "award_units": avt, "reason": "not delivered"}, nil))
	require.Eventually(t, func() bool {
		var n int
		return es.QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = 'DisputeRuled'`).Scan(&n) == nil && n == 1
	}, 60*time.Second, 100*time.Millisecond, "the ruling reaches the EventStore")
	run3 := runAfter(run2.RunID)
	var after trustScore
	require.Equal(t, 200, c.call("GET", "/api/v1/reputation/"+trusted+"/trust-score", "", nil, &after))
	require.Equal(t, run3, after.RunID)
	require.Less(t, after.TrustBps, before.TrustBps, "the lost dispute lowers trusted's trust")
	require.Less(t, after.Score, before.Score)

	// Runs move no money: the frame's supply audit holds.
	require.Eventually(t, func() bool {
		var rep ingest.AuditReport
		return c.call("GET", "/api/v1/projections/supply-audit", "", nil, &rep) == 200 && rep.OK
	}, 30*time.Second, 200*time.Millisecond, "supply audit ok")
}

// waitTransfersLogged waits until the EventStore has logged want
// transfers.
func waitTransfersLogged(t *testing.T, es *pgxpool.Pool, want int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		return es.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type = 'TokensTransferred'`).Scan(&n) == nil && n >= want
	}, 60*time.Second, 100*time.Millisecond, "transfers reach the EventStore")
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}
