package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/devstack"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/split"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// splitRegistry is one registry whose roles run in three nodes with their
// own listeners, as three processes would: the EventStore, the TEG with
// the worker, and the registry.
type splitRegistry struct {
	frame        config.Frame
	reg          config.Registry
	dataDir      string
	es, teg, rgy *node.Node
}

func startSplitRegistry(t *testing.T) *splitRegistry {
	t.Helper()
	ctx := context.Background()
	frame, reg := testRegistry(t)
	frame.GenesisSupplyUnits = 1_000_000 * avt
	// Another registry of the frame (never started): the TEG's process,
	// without the registry's peer licences, starts without peering it.
	frame.Registries = append(frame.Registries, config.Registry{ID: reg.ID + "-other", Roles: []string{config.RoleRegistry, config.RoleTEG}, MTLSPort: 1})
	s := &splitRegistry{frame: frame, reg: reg, dataDir: t.TempDir()} // one data dir: one dev CA, one event key
	bond := config.DefaultBondSettings()
	// Checked 2s after the lock; never mature here (too few transfers).
	bond.MinAge, bond.RecheckEvery, bond.MinTransfers, bond.MinTrust = 2*time.Second, time.Hour, 1000, 0
	recon := config.ReconSettings{CheckpointEvery: time.Minute, Grace: 2 * time.Second, Every: 200 * time.Millisecond, StaleAfter: time.Minute, CheckpointMaxAge: time.Hour}
	opts := func(roles ...string) node.Options {
		r := reg
		r.Roles = roles
		return node.Options{Frame: frame, Registry: r, PostgresAdminURL: testenv.PostgresURL(t), TemporalAddr: testenv.TemporalAddr(t),
			KafkaBrokers: testenv.KafkaBrokers(t), DataDir: s.dataDir, Log: quietLog, BondSettings: bond, ReconSettings: recon}
	}
	start := func(o node.Options) *node.Node {
		n, err := node.Start(ctx, o)
		require.NoError(t, err, "start %v", o.Registry.Roles)
		t.Cleanup(func() { n.Stop(context.Background()) })
		return n
	}
	// The registry's mTLS port is chosen first: the TEG and the EventStore
	// ask it for tokens (and the TEG for agents), the registry asks the
	// TEG for accounts and bonds.
	regPort, err := devstack.FreePort("127.0.0.1")
	require.NoError(t, err)
	tegPort, err := devstack.FreePort("127.0.0.1")
	require.NoError(t, err)
	regMTLS := fmt.Sprintf("https://127.0.0.1:%d", regPort)
	o := opts(config.RoleEventStore)
	o.Split.RegistryMTLSURL = regMTLS
	o.Split.TEGMTLSURL = fmt.Sprintf("https://127.0.0.1:%d", tegPort) // its dispute enforcer slashes there
	s.es = start(o)

	o = opts(config.RoleTEG, config.RoleWorker)
	o.Registry.MTLSPort = tegPort
	o.EventStoreURL = s.es.URL()
	o.ReconSettings.EventStoreMTLSURL = s.es.MTLSURL()
	o.Split.RegistryMTLSURL = regMTLS
	s.teg = start(o)
	t.Cleanup(func() { deleteSchedules(s.teg, reg.ID) })

	o = opts(config.RoleRegistry)
	o.Registry.MTLSPort = regPort
	o.EventStoreURL = s.es.URL()
	o.Split.TEGMTLSURL = s.teg.MTLSURL()
	o.WriteAdminCredentials = true
	s.rgy = start(o)
	return s
}

// TestSplitRolesRunTheRegistryFlow runs the registry end-to-end flow with
// the registry, the TEG and the EventStore of one registry in three nodes:
// sign-up opens the wallet on the TEG's process, agent creation opens the
// agent's account and locks its bond there, the TEG's API authenticates
// tokens through the registry's process (a revoked token is refused at
// once), transfers and mint (its gate asking the EventStore's process)
// reach the EventStore, and the audit balances to zero.
func TestSplitRolesRunTheRegistryFlow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startSplitRegistry(t)
	teg := s.teg.Pools[db.RoleTEG]
	es := s.es.Pools[db.RoleEventStore]
	require.Nil(t, s.rgy.Pools[db.RoleTEG], "the registry's node has no TEG database")
	require.Nil(t, s.teg.Pools[db.RoleRegistry], "the TEG's node has no registry database")
	bucket := func(account, b string) int64 { return bucketUnits(t, teg, account, b) }
	rc, tc, ec := httpClient{t, s.rgy.URL()}, httpClient{t, s.teg.URL()}, httpClient{t, s.es.URL()}
	var tok struct {
		AccessToken string `json:"access_token"`
	}

	admin := rc.adminToken(s.dataDir, s.reg.ID)
	dev, devTok := rc.signUp("Ada", "ada@example.org")
	require.Zero(t, bucket(dev.AccountID, "liquid"), "sign-up opened the wallet on the TEG's node")
	// The admin token, issued by the registry's node, works on the TEG's.
	require.Equal(t, 201, tc.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": dev.AccountID, "amount": "150", "reason": "bonds"}, nil))

	newAgent := func(devTok string) (int, string, string) {
		var bt struct {
			Token string `json:"bootstrap_token"`
		}
		require.Equal(t, 201, rc.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
		var ag struct {
			DID          string `json:"did"`
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		code := rc.call("POST", "/api/v1/agents", bt.Token, map[string]any{}, &ag)
		if code != 201 {
			return code, "", ""
		}
		require.Equal(t, 200, rc.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": ag.ClientID, "client_secret": ag.ClientSecret}, &tok))
		return code, ag.DID, tok.AccessToken
	}
	code, alice, aliceTok := newAgent(devTok)
	require.Equal(t, 201, code)
	code, bob, bobTok := newAgent(devTok)
	require.Equal(t, 201, code)
	t.Cleanup(func() { terminateBonds(s.teg, alice, bob) })
	require.Equal(t, 50*avt, bucket(alice, "locked_bond"), "agent creation locked the bond on the TEG's node")
	require.Equal(t, 50*avt, bucket(bob, "locked_bond"))
	require.Equal(t, 50*avt, bucket(dev.AccountID, "liquid"))
	var st struct {
		State       string `json:"state"`
		LockedUnits int64  `json:"locked_units"`
	}
	require.Equal(t, 200, rc.call("GET", "/api/v1/agents/"+alice+"/reputation-bond", devTok, nil, &st), "the registry's node asks the TEG's")
	require.Equal(t, "locked", st.State)
	require.Equal(t, 50*avt, st.LockedUnits)

	// A wallet short of the bond: 422 from the TEG's node, no agent.
	_, poorTok := rc.signUp("Poor", "poor@example.org")
	code, _, _ = newAgent(poorTok)
	require.Equal(t, 422, code)

	require.Equal(t, 201, tc.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": alice, "amount": "1000", "reason": "e2e"}, nil))
	for range 5 {
		require.Equal(t, 201, tc.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": bob, "amount": "10.5"}, nil))
	}
	require.Equal(t, 400, tc.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": bob, "amount_units": -5}, nil))
	require.Equal(t, 422, tc.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": bob, "amount": "5000"}, nil))
	require.Equal(t, 401, tc.call("POST", "/api/v1/transfers", "not-a-token", map[string]any{"to": bob, "amount": "1"}, nil))
	require.Equal(t, 401, tc.call("POST", "/api/v1/transfers", "", map[string]any{"to": bob, "amount": "1"}, nil))
	// Revoked on the registry's node, refused on the TEG's at once.
	require.Equal(t, 200, rc.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "api_key", "api_key": dev.APIKey}, &tok))
	devTok2 := tok.AccessToken
	require.Equal(t, 200, tc.call("GET", "/api/v1/transfers", devTok2, nil, nil))
	require.Equal(t, 200, rc.call("POST", "/api/v1/auth/revoke", devTok2, nil, nil))
	require.Equal(t, 401, tc.call("GET", "/api/v1/transfers", devTok2, nil, nil))
	require.Equal(t, 200, tc.call("GET", "/api/v1/transfers", devTok, nil, nil), "only that token")

	t.Run("the TEG's split endpoints are idempotent and admit only the registry", func(t *testing.T) {
		self, err := identity.TEGID(spiffeid.RequireTrustDomainFromString(s.frame.TrustDomain), s.reg.ID)
		require.NoError(t, err)
		mine := s.rgy.TLS.HTTPClient(identity.AuthorizeID(self), identity.HTTPClientOptions{Timeout: 5 * time.Second})
		lock := split.BondRequest{AgentDID: alice, DevAccount: dev.AccountID, AmountUnits: 50 * avt, IdempotencyKey: "bond-lock-" + alice}
		var ans split.BondAnswer
		require.Equal(t, 200, postJSON(t, mine, s.teg.MTLSURL()+split.PathBondLock, lock, &ans))
		require.True(t, ans.Replayed, "the lock is found under its key")
		require.Equal(t, 50*avt, bucket(alice, "locked_bond"), "and not taken twice")
		require.Equal(t, 400, postJSON(t, mine, s.teg.MTLSURL()+split.PathAccounts, split.AccountRequest{ID: "treasury", Kind: "system"}, nil))

		ca, err := identity.OpenCA(s.dataDir, spiffeid.RequireTrustDomainFromString(s.frame.TrustDomain), identity.CAOptions{})
		require.NoError(t, err)
		for _, path := range []string{"/teg/other-registry", "/registry/" + s.reg.ID} {
			svid, err := ca.Issue(spiffeid.RequireFromPath(self.TrustDomain(), path), time.Hour)
			require.NoError(t, err)
			other := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsconfig.MTLSClientConfig(svid, ca.X509Bundle(), tlsconfig.AuthorizeAny())}}
			require.Equal(t, 403, postJSON(t, other, s.teg.MTLSURL()+split.PathBondVoid, lock, nil), "%s voids no bond", path)
			require.Equal(t, 403, postJSON(t, other, s.rgy.MTLSURL()+split.PathAuthenticate, nil, nil), "%s checks no token", path)
		}
		require.Equal(t, 50*avt, bucket(alice, "locked_bond"))
	})

	t.Run("a bond whose agent never committed is voided by the TEG's worker", func(t *testing.T) {
		// The registry's process locked a bond and started its workflow,
		// then died before the agent committed.
		self, err := identity.TEGID(spiffeid.RequireTrustDomainFromString(s.frame.TrustDomain), s.reg.ID)
		require.NoError(t, err)
		mine := s.rgy.TLS.HTTPClient(identity.AuthorizeID(self), identity.HTTPClientOptions{Timeout: 5 * time.Second})
		ghost := "did:theprotocol:" + uuid.NewString()
		require.Equal(t, 200, postJSON(t, mine, s.teg.MTLSURL()+split.PathAccounts, split.AccountRequest{ID: ghost, Kind: "agent"}, nil))
		require.Equal(t, 200, postJSON(t, mine, s.teg.MTLSURL()+split.PathBondLock,
			split.BondRequest{AgentDID: ghost, DevAccount: dev.AccountID, AmountUnits: 50 * avt, IdempotencyKey: "bond-lock-" + ghost}, nil))
		require.Zero(t, bucket(dev.AccountID, "liquid"))
		_, err = s.rgy.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.BondWorkflowID(ghost), TaskQueue: s.reg.TaskQueue()},
			workflows.BondWorkflowName, workflows.BondInput{AgentDID: ghost, DeveloperAccount: dev.AccountID, AmountUnits: 50 * avt,
				MinAge: 2 * time.Second, MinTransfers: 1000, RecheckEvery: time.Hour})
		require.NoError(t, err)
		t.Cleanup(func() { terminateBonds(s.teg, ghost) })
		require.Eventually(t, func() bool {
			moves, err := s.teg.Ledger.BondMoves(ctx, ghost)
			return err == nil && len(moves) == 2 && moves[1].Kind == ledgerstore.BondVoid
		}, 60*time.Second, 200*time.Millisecond, "the workflow asks the registry's node, finds no agent and voids the bond")
		require.Equal(t, 50*avt, bucket(dev.AccountID, "liquid"), "back in the wallet")
		require.Equal(t, 50*avt, bucket(alice, "locked_bond"), "live agents keep theirs")
	})

	t.Run("a dispute ruled on the TEG's node is enforced by the EventStore's", func(t *testing.T) {
		require.Equal(t, 201, tc.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": bob, "amount": "200", "reason": "stake"}, nil))
		require.Equal(t, 201, tc.call("POST", "/api/v1/staking/stake", bobTok, map[string]any{"tier": "flexible", "amount": "100"}, nil))
		var tr struct {
			ID string `json:"id"`
		}
		require.Equal(t, 201, tc.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": bob, "amount": "100"}, &tr))
		var d struct {
			ID string `json:"id"`
		}
		require.Equal(t, 201, tc.call("POST", "/api/v1/disputes", aliceTok, map[string]any{"transfer_id": tr.ID, "claimed_units": 60 * avt, "evidence_ref": "https://evidence.example/" + tr.ID}, &d))
		t.Cleanup(func() {
			_ = s.teg.Temporal.TerminateWorkflow(context.Background(), workflows.DisputeWorkflowID(d.ID), "", "test over")
		})
		require.Equal(t, 200, tc.call("POST", "/api/v1/disputes/"+d.ID+"/response", bobTok, map[string]any{"response_ref": "https://evidence.example/answer"}, nil))
		require.Equal(t, 100*avt, bucket(bob, "staked"))
		require.Equal(t, 200, tc.call("POST", "/api/v1/admin/disputes/"+d.ID+"/ruling", admin, map[string]any{"outcome": "complainant", "award_units": 50 * avt, "reason": "not delivered"}, nil))
		require.Eventually(t, func() bool {
			var got struct {
				SettledAt string `json:"settled_at"`
			}
			return tc.call("GET", "/api/v1/disputes/"+d.ID, aliceTok, nil, &got) == 200 && got.SettledAt != ""
		}, 60*time.Second, 200*time.Millisecond, "the compensation minted by the TEG's worker, through the mint gate")
		require.Eventually(t, func() bool {
			return countWhere(t, teg, `SELECT count(*) FROM stake_slashes WHERE case_id = $1 AND agent_did = $2`, "dispute-"+d.ID, bob) == 1
		}, 60*time.Second, 200*time.Millisecond, "the loser's stake slashed through the TEG's split endpoint")
		require.Zero(t, bucket(bob, "staked"))
	})

	// The mint gate of the TEG's node asks the EventStore's node.
	var audit ingest.AuditReport
	require.Eventually(t, func() bool {
		return ec.call("GET", "/api/v1/projections/supply-audit", "", nil, &audit) == 200 && audit.OK
	}, 60*time.Second, 200*time.Millisecond, "the audit is clean")
	require.Equal(t, 201, tc.call("POST", "/api/v1/admin/mint", admin, map[string]any{"amount": "1", "reason": "split roles"}, nil))
	// The EventStore's admin routes take the registry's tokens too.
	require.Equal(t, 200, ec.call("GET", "/api/v1/admin/projections/balances?account="+alice, admin, nil, nil))
	require.Equal(t, 403, ec.call("GET", "/api/v1/admin/projections/balances?account="+alice, aliceTok, nil, nil))

	// Every event of both databases reaches the EventStore's node.
	for role, n := range map[db.Role]*node.Node{db.RoleTEG: s.teg, db.RoleRegistry: s.rgy} {
		var outboxRows int
		require.NoError(t, n.Pools[role].QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outboxRows))
		require.Eventually(t, func() bool {
			var ingested int
			require.NoError(t, es.QueryRow(ctx, `SELECT count(*) FROM events WHERE source = $1`, string(role)).Scan(&ingested))
			return ingested == outboxRows
		}, 60*time.Second, 100*time.Millisecond, "all %d %s events reach the EventStore", outboxRows, role)
	}
	rep, err := ingest.Audit(ctx, es, s.frame.ID)
	require.NoError(t, err)
	require.Equal(t, s.frame.GenesisSupplyUnits+avt, rep.TokensIssued)
	require.Zero(t, rep.TransitNet)
	require.Equal(t, 50*avt, rep.CompensationIssued)
	require.Zero(t, rep.Delta)
	replay, err := ingest.Replay(ctx, es, s.frame.ID)
	require.NoError(t, err)
	require.True(t, replay.OK, "%+v", replay)

	rows, err := teg.Query(ctx, `SELECT account_id, bucket, units FROM balances WHERE units <> 0 ORDER BY 1, 2`)
	require.NoError(t, err)
	checked := 0
	for rows.Next() {
		var acct, b string
		var units int64
		require.NoError(t, rows.Scan(&acct, &b, &units))
		var projected int64
		require.NoError(t, es.QueryRow(ctx, `SELECT balance FROM projection_balances WHERE account = $1 AND bucket = $2`, ingest.Qualify(s.reg.ID, acct), b).Scan(&projected), acct)
		require.Equal(t, units, projected, "%s/%s", acct, b)
		checked++
	}
	require.NoError(t, rows.Err())
	require.GreaterOrEqual(t, checked, 7)

	var bal struct {
		Available int64 `json:"available_units"`
	}
	require.Equal(t, 200, tc.call("GET", "/api/v1/agents/"+alice+"/balance", aliceTok, nil, &bal))
	// 1000 granted, 5 × 10.5 and 100 paid to bob, 50 awarded by the ruling.
	require.EqualValues(t, (1000-5*10.5-100+50)*100_000_000, bal.Available)

	// The TEG's process stops: the registry's says so and creates no agent.
	require.Equal(t, 200, rc.call("GET", "/readyz", "", nil, nil))
	s.teg.Stop(ctx)
	var ready struct {
		Checks map[string]string `json:"checks"`
	}
	require.Equal(t, 503, rc.call("GET", "/readyz", "", nil, &ready))
	require.Equal(t, "error", ready.Checks["teg"])
	var bt struct {
		Token string `json:"bootstrap_token"`
	}
	require.Equal(t, 201, rc.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
	var agents int
	require.NoError(t, s.rgy.Pools[db.RoleRegistry].QueryRow(ctx, `SELECT count(*) FROM agents`).Scan(&agents))
	require.Equal(t, 503, rc.call("POST", "/api/v1/agents", bt.Token, map[string]any{}, nil))
	require.Equal(t, agents, countWhere(t, s.rgy.Pools[db.RoleRegistry], `SELECT count(*) FROM agents`), "no agent without its account")
}

// postJSON posts body (JSON, or nothing) over cl and decodes a 200 answer
// into out; it returns the status.
func postJSON(t *testing.T, cl *http.Client, url string, body, out any) int {
	t.Helper()
	var rd *strings.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = strings.NewReader(string(raw))
	} else {
		rd = strings.NewReader("")
	}
	resp, err := cl.Post(url, "application/json", rd)
	require.NoError(t, err)
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

// A process hosting a registry without its TEG, or a TEG without its
// registry, refuses to start without the other's address, before it
// creates anything: it would create agents with no account and no bond,
// or answer 401 to every caller.
func TestSplitRolesNeedTheOtherRolesAddress(t *testing.T) {
	t.Parallel()
	frame, reg := testRegistry(t)
	for msg, roles := range map[string][]string{
		"teg-mtls-url":               {config.RoleRegistry},
		"registry-mtls-url":          {config.RoleTEG, config.RoleWorker},
		"teg role beside the worker": {config.RoleEventStore, config.RoleWorker},
	} {
		r := reg
		r.Roles = roles
		_, err := node.Start(context.Background(), node.Options{Frame: frame, Registry: r, PostgresAdminURL: "postgres://nowhere.invalid/x",
			TemporalAddr: testenv.TemporalAddr(t), DataDir: t.TempDir(), Log: quietLog})
		require.ErrorContains(t, err, msg, "%v", roles)
	}
	r := reg
	r.Roles = []string{config.RoleRegistry}
	_, err := node.Start(context.Background(), node.Options{Frame: frame, Registry: r, PostgresAdminURL: "postgres://nowhere.invalid/x",
		TemporalAddr: testenv.TemporalAddr(t), DataDir: t.TempDir(), Log: quietLog, Split: config.SplitSettings{TEGMTLSURL: "http://teg:1"}})
	require.ErrorContains(t, err, "teg-mtls-url", "plain http is refused")
}
