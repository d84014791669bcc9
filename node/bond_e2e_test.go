package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

const avt = int64(100_000_000)

// TestReputationBondEndToEnd runs the reputation bond on a node started in
// the test, with real Postgres and Temporal: creating an agent locks 50 AVT
// from the developer wallet into the agent's locked_bond bucket; an agent
// that transfers matures (bond back to its liquid balance); an agent
// deregistered early forfeits its bond to the treasury; a wallet short of
// the bond refuses the agent (422) and creates none.
func TestReputationBondEndToEnd(t *testing.T) {
	ctx := context.Background()
	n, reg, dataDir, c := startBondNode(t)
	teg := n.Pools[db.RoleTEG]
	bucket := func(account, bucket string) int64 { return bucketUnits(t, teg, account, bucket) }

	admin := c.adminToken(dataDir, reg.ID)
	var tok struct {
		AccessToken string `json:"access_token"`
	}

	dev, devTok := c.signUp("Grace", "grace@example.org")

	createAgent := func() (int, string, string) {
		var bt struct {
			Token string `json:"bootstrap_token"`
		}
		require.Equal(t, 201, c.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
		var ag struct {
			DID          string `json:"did"`
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		code := c.call("POST", "/api/v1/agents", bt.Token, map[string]any{}, &ag)
		if code != 201 {
			return code, "", ""
		}
		require.Equal(t, 200, c.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": ag.ClientID, "client_secret": ag.ClientSecret}, &tok))
		return code, ag.DID, tok.AccessToken
	}

	// The developer is funded by an admin grant: 120 AVT, two bonds' worth.
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": dev.AccountID, "amount": "120", "reason": "bond e2e"}, nil))
	code, alice, aliceTok := createAgent()
	require.Equal(t, 201, code)
	t.Cleanup(func() { terminateBonds(n, alice) })
	require.Equal(t, 50*avt, bucket(alice, "locked_bond"), "the bond is locked in the agent's locked_bond")
	require.Equal(t, 70*avt, bucket(dev.AccountID, "liquid"), "and debited from the developer wallet")
	require.Zero(t, bucket(alice, "liquid"))

	code, bob, _ := createAgent()
	require.Equal(t, 201, code)
	t.Cleanup(func() { terminateBonds(n, bob) })
	require.Equal(t, 50*avt, bucket(bob, "locked_bond"))
	require.Equal(t, 20*avt, bucket(dev.AccountID, "liquid"))

	var st struct {
		State       string `json:"state"`
		AmountUnits int64  `json:"amount_units"`
		LockedUnits int64  `json:"locked_units"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/agents/"+bob+"/reputation-bond", devTok, nil, &st))
	require.Equal(t, "locked", st.State)
	require.Equal(t, 50*avt, st.LockedUnits)

	// Bob is deregistered before maturity: his bond goes to the treasury.
	treasury := bucket("treasury", "liquid")
	require.Equal(t, 200, c.call("DELETE", "/api/v1/agents/"+bob, devTok, map[string]any{}, nil))
	require.Eventually(t, func() bool { return bucket(bob, "locked_bond") == 0 }, 60*time.Second, 100*time.Millisecond, "bob's bond forfeited")
	require.Equal(t, treasury+50*avt, bucket("treasury", "liquid"))
	require.Zero(t, bucket(bob, "liquid"))
	require.Equal(t, 200, c.call("GET", "/api/v1/agents/"+bob+"/reputation-bond", devTok, nil, &st))
	require.Equal(t, "forfeited", st.State)

	// Alice makes one transfer (the minimum in this test) and matures.
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": alice, "amount": "10", "reason": "bond e2e"}, nil))
	require.Equal(t, 201, c.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": dev.AccountID, "amount": "1"}, nil))
	require.Eventually(t, func() bool { return bucket(alice, "locked_bond") == 0 }, 30*time.Second, 100*time.Millisecond, "alice's bond matured")
	require.Equal(t, 59*avt, bucket(alice, "liquid"), "10 granted − 1 sent + the 50 AVT bond")
	require.Equal(t, 200, c.call("GET", "/api/v1/agents/"+alice+"/reputation-bond", aliceTok, nil, &st))
	require.Equal(t, "matured", st.State)

	// The wallet now holds 20 AVT + alice's 1 AVT net of fee: short of a bond.
	reg0 := n.Pools[db.RoleRegistry]
	var agentsBefore, agentsAfter int
	require.NoError(t, reg0.QueryRow(ctx, `SELECT count(*) FROM agents`).Scan(&agentsBefore))
	walletBefore := bucket(dev.AccountID, "liquid")
	require.Less(t, walletBefore, 50*avt)
	code, _, _ = createAgent()
	require.Equal(t, 422, code, "a wallet short of the bond refuses the agent")
	require.NoError(t, reg0.QueryRow(ctx, `SELECT count(*) FROM agents`).Scan(&agentsAfter))
	require.Equal(t, agentsBefore, agentsAfter, "no agent created")
	require.Equal(t, walletBefore, bucket(dev.AccountID, "liquid"), "nothing debited")

	// One event per bond move, in the TEG outbox.
	for typ, want := range map[string]int{"ReputationBondLocked": 2, "ReputationBondForfeited": 1, "ReputationBondMatured": 1, "ReputationBondVoided": 0} {
		var got int
		require.NoError(t, teg.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_type = $1`, typ).Scan(&got))
		require.Equal(t, want, got, typ)
	}
}

// startBondNode starts a mainframe node with bond criteria short enough
// for a test (two seconds' minimum age, checked every second, one
// transfer) and returns it with its registry, data directory and client.
func startBondNode(t *testing.T) (*node.Node, config.Registry, string, httpClient) {
	t.Helper()
	// No trust floor here: the bond reads real trust scores, which these
	// agents never earn; the floor is tested in reputation_e2e_test.
	return startBondNodeTrust(t, 0)
}

// startBondNodeTrust is startBondNode with the bond's trust floor, in
// basis points.
func startBondNodeTrust(t *testing.T, minTrust int64) (*node.Node, config.Registry, string, httpClient) {
	t.Helper()
	bond := config.DefaultBondSettings()
	bond.MinAge, bond.RecheckEvery, bond.MinTransfers, bond.MinTrust = 2*time.Second, time.Second, 1, minTrust
	frame, reg := testRegistry(t)
	frame.GenesisSupplyUnits = 1_000_000 * avt
	dataDir := t.TempDir()
	n, err := node.Start(context.Background(), node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: dataDir, WriteAdminCredentials: true, Log: quietLog, BondSettings: bond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })
	t.Cleanup(func() { deleteSchedules(n, reg.ID) })
	return n, reg, dataDir, httpClient{t, n.URL()}
}

// bucketUnits reads one TEG balance; -1 when the row does not exist.
func bucketUnits(t *testing.T, teg *pgxpool.Pool, account, bucket string) int64 {
	t.Helper()
	var units int64
	err := teg.QueryRow(context.Background(), `SELECT units FROM balances WHERE account_id = $1 AND bucket = $2`, account, bucket).Scan(&units)
	if err != nil {
		return -1
	}
	return units
}
