package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

type httpClient struct {
	t    *testing.T
	base string
}

func (c httpClient) call(method, path, token string, body any, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(c.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if method != http.MethodGet {
			req.Header.Set("Idempotency-Key", uuid.NewString())
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		require.NoError(c.t, json.Unmarshal(raw, out), string(raw))
	}
	if resp.StatusCode >= 300 {
		c.t.Logf("%s %s -> %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

// TestMoneyFlowsFromAPIToEventStore drives a node the way users do — admin,
// developer, two agents, grants and transfers over HTTP — and checks that
// every ledger event reached the frame's EventStore exactly once through the
// outbox, relay and Kafka, that the supply audit is exact with every term,
// and that the projections equal the TEG's own balances.
func TestMoneyFlowsFromAPIToEventStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	frame, reg := testRegistry(t)
	frame.GenesisSupplyUnits = 1_000_000 * 100_000_000
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

	admin := c.adminToken(dataDir, reg.ID)
	var tok struct {
		AccessToken string `json:"access_token"`
	}

	dev, devTok := c.signUp("Ada", "ada@example.org")

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
		require.Equal(t, 200, c.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": ag.ClientID, "client_secret": ag.ClientSecret}, &tok))
		return ag.DID, tok.AccessToken
	}
	// Every agent locks a 50 AVT reputation bond from the developer wallet.
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": dev.AccountID, "amount": "100", "reason": "bonds"}, nil))
	alice, aliceTok := newAgent()
	bob, _ := newAgent()
	t.Cleanup(func() { terminateBonds(n, alice, bob) })

	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": alice, "amount": "1000", "reason": "e2e"}, nil))
	for range 5 {
		require.Equal(t, 201, c.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": bob, "amount": "10.5"}, nil))
	}
	// Bad input writes nothing and moves nothing.
	require.Equal(t, 400, c.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": bob, "amount_units": -5}, nil))
	require.Equal(t, 422, c.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": bob, "amount": "5000"}, nil))

	teg := n.Pools[db.RoleTEG]
	es := n.Pools[db.RoleEventStore]
	var outboxRows int
	require.NoError(t, teg.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outboxRows))
	require.Eventually(t, func() bool {
		var ingested int
		require.NoError(t, es.QueryRow(ctx, `SELECT count(*) FROM events WHERE source = 'teg'`).Scan(&ingested))
		return ingested == outboxRows
	}, 30*time.Second, 100*time.Millisecond, "all %d TEG events reach the EventStore", outboxRows)

	rep, err := ingest.Audit(ctx, es, frame.ID)
	require.NoError(t, err)
	require.Equal(t, frame.GenesisSupplyUnits, rep.TokensIssued)
	require.Zero(t, rep.TokensDestroyed)
	require.Zero(t, rep.TransitNet)
	require.Equal(t, frame.GenesisSupplyUnits, rep.TotalCirculating)
	require.Zero(t, rep.Delta)
	replay, err := ingest.Replay(ctx, es, frame.ID)
	require.NoError(t, err)
	require.True(t, replay.OK, "%+v", replay)

	// Projections equal the TEG's balances, account by account.
	rows, err := teg.Query(ctx, `SELECT account_id, bucket, units FROM balances WHERE units <> 0 ORDER BY 1, 2`)
	require.NoError(t, err)
	checked := 0
	for rows.Next() {
		var acct, bucket string
		var units int64
		require.NoError(t, rows.Scan(&acct, &bucket, &units))
		var projected int64
		require.NoError(t, es.QueryRow(ctx, `SELECT balance FROM projection_balances WHERE account = $1 AND bucket = $2`, ingest.Qualify(reg.ID, acct), bucket).Scan(&projected), acct)
		require.Equal(t, units, projected, "%s/%s", acct, bucket)
		checked++
	}
	require.NoError(t, rows.Err())
	require.GreaterOrEqual(t, checked, 7, "treasury, issuance, fee collector, alice, bob, their bonds")

	var bal struct {
		Available int64 `json:"available_units"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/agents/"+alice+"/balance", aliceTok, nil, &bal))
	require.EqualValues(t, (1000-5*10.5)*100_000_000, bal.Available)
}

// adminToken exchanges the dev admin client written under dataDir for a
// bearer token.
func (c httpClient) adminToken(dataDir, registryID string) string {
	c.t.Helper()
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	raw, err := os.ReadFile(node.AdminCredentialsFile(dataDir, registryID))
	require.NoError(c.t, err)
	require.NoError(c.t, json.Unmarshal(raw, &creds))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(c.t, 200, c.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": creds.ClientID, "client_secret": creds.ClientSecret}, &tok))
	return tok.AccessToken
}

// developer is a signed-up developer.
type developer struct {
	APIKey    string `json:"api_key"`
	AccountID string `json:"account_id"`
}

// signUp registers a developer (sign-up needs a long Idempotency-Key) and
// returns it with a developer token.
func (c httpClient) signUp(name, email string) (developer, string) {
	c.t.Helper()
	var dev developer
	body, err := json.Marshal(map[string]string{"name": name, "email": email})
	require.NoError(c.t, err)
	req, err := http.NewRequest("POST", c.base+"/api/v1/developers", bytes.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", uuid.NewString()+uuid.NewString())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	require.Equal(c.t, 201, resp.StatusCode)
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&dev))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(c.t, 200, c.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "api_key", "api_key": dev.APIKey}, &tok))
	return dev, tok.AccessToken
}

func deleteSchedules(n *node.Node, registry string) {
	ctx := context.Background()
	for _, f := range workflows.Families { // every family's, so none outlives its test
		for _, s := range f.Schedules {
			_ = n.Temporal.ScheduleClient().GetHandle(ctx, s.ID(registry)).Delete(ctx)
		}
	}
	if n.Xfer != nil { // the card syncs with the node's peers, both ways
		for _, p := range n.Xfer.Peers.List() {
			_ = n.Temporal.TerminateWorkflow(ctx, workflows.FederationSyncWorkflowID(registry, p.Registry), "", "test over")
			_ = n.Temporal.TerminateWorkflow(ctx, workflows.FederationSyncWorkflowID(p.Registry, registry), "", "test over")
		}
	}
}

// terminateBonds ends the bond workflows of dids (the test namespace is
// shared and outlives the node).
func terminateBonds(n *node.Node, dids ...string) {
	for _, did := range dids {
		_ = n.Temporal.TerminateWorkflow(context.Background(), workflows.BondWorkflowID(did), "", "test over")
	}
}
