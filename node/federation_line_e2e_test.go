package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/federation"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// topologyRegistries lists the registries of n's trusted set, through
// its API.
func topologyRegistries(c httpClient) []string {
	c.t.Helper()
	var top federation.Topology
	require.Equal(c.t, 200, c.call("GET", "/api/v1/federation/topology", "", nil, &top))
	out := []string{}
	for _, e := range top.Registries {
		out = append(out, e.Registry)
	}
	return out
}

// TestFederationLine runs five registries in a line, A–B–C–D–E (one
// process, a database each, each licensing only its neighbours; A is the
// mainframe). Once the walks have reached each other (the time is
// logged), A funds E's treasury through the saga, an agent registered on
// E is resolvable from A (the time is logged), and A pays it through the
// saga, straight to E over mTLS, trusted through the chain of signed
// listings; an account both C and E claim is a 409 conflict, counted.
// With the walk bounded to 3 hops E is out of A's reach. When A revokes B,
// B is refused at once, and C, D and E, reached only through B, leave A's
// topology and are refused with it.
func TestFederationLine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	names := []string{"la", "lb", "lc", "ld", "le"}
	regs := make([]config.Registry, len(names))
	for i, n := range names {
		regs[i] = config.Registry{ID: n + suffix, Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace}
	}
	regs[0].Mainframe = true
	regs[0].Roles = []string{"registry", "teg", "eventstore", "worker"}
	frame := config.Frame{ID: "fl" + suffix, TrustDomain: "fl" + suffix + ".theprotocol.test", Currency: "AVT", Genesis: true,
		GenesisSupplyUnits: 1_000_000 * avt, Registries: regs}
	dataDir := t.TempDir() // one dev CA for the frame
	nodes := make([]*node.Node, len(regs))
	for i, reg := range regs {
		o := node.Options{
			Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t),
			TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
			DataDir: dataDir, Log: quietLog, WriteAdminCredentials: true,
			DiscoverySettings: config.DiscoverySettings{Depth: 4, Interval: time.Second},
			FederationSync:    config.FederationSyncSettings{Interval: time.Second},
		}
		if i > 0 {
			o.EventStoreURL = nodes[0].URL()
		}
		n, err := node.Start(ctx, o)
		require.NoError(t, err)
		nodes[i] = n
		t.Cleanup(func() { n.Stop(context.Background()) })
		t.Cleanup(func() {
			deleteSchedules(n, reg.ID)
			_ = n.Temporal.ScheduleClient().GetHandle(context.Background(), "xfer-prepare-sweep-"+reg.ID).Delete(context.Background())
		})
	}
	a, e := nodes[0], nodes[4]
	td := spiffeid.RequireTrustDomainFromString(frame.TrustDomain)
	A, B, E := regs[0].ID, regs[1].ID, regs[4].ID
	c := httpClient{t, a.URL()}

	// The sender on A.
	admin := c.adminToken(dataDir, A)
	alice, aliceTok := registerAgent(c, admin, "ada-"+suffix)
	t.Cleanup(func() { terminateBonds(a, alice) })
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": alice, "amount": "1000", "reason": "e2e"}, nil))

	// Each licenses only its neighbours; the scheduled walks do the rest.
	start := time.Now()
	for i := 0; i+1 < len(nodes); i++ {
		require.NoError(t, nodes[i].ConnectPeer(ctx, regs[i+1].ID, nodes[i+1].MTLSURL()))
		require.NoError(t, nodes[i+1].ConnectPeer(ctx, regs[i].ID, nodes[i].MTLSURL()))
	}
	require.Eventually(t, func() bool { return a.Discovery().Trusted(E) && e.Discovery().Trusted(A) },
		90*time.Second, 50*time.Millisecond, "A and E reach each other")
	t.Logf("A and E trust each other %s after the line was peered (walks every second, depth 4)", time.Since(start).Round(time.Millisecond))
	var top federation.Topology
	require.Equal(t, 200, c.call("GET", "/api/v1/federation/topology", "", nil, &top))
	require.Equal(t, []string{B, regs[2].ID, regs[3].ID, E}, topologyRegistries(c))
	require.Equal(t, []string{A, B, regs[2].ID, regs[3].ID, E}, top.Registries[3].Chain)
	require.Len(t, top.Registries[3].Attestations, 4, "one signed listing per registry of the chain after A")
	require.True(t, a.Xfer.Participant.Allowed(spiffeid.RequireFromPath(td, "/teg/"+E)), "A admits E, trusted through the chain")

	// A's signed listing: any TEG of the frame reads and checks it; another
	// workload of the frame is refused.
	frameCA, err := identity.OpenCA(dataDir, td, identity.CAOptions{})
	require.NoError(t, err)
	readListing := func(id spiffeid.ID) (int, federation.SignedListing) {
		svid, err := frameCA.Issue(id, time.Hour)
		require.NoError(t, err)
		cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tlsconfig.MTLSClientConfig(svid, frameCA.X509Bundle(), tlsconfig.AuthorizeAny())}}
		resp, err := cl.Get(a.MTLSURL() + federation.PathPeerListing)
		require.NoError(t, err)
		defer resp.Body.Close()
		var s federation.SignedListing
		if resp.StatusCode == 200 {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
		}
		return resp.StatusCode, s
	}
	status, signed := readListing(spiffeid.RequireFromPath(td, "/teg/"+E))
	require.Equal(t, 200, status)
	listing, err := federation.VerifyListing(signed, frameCA.X509Bundle(), td, A, time.Now())
	require.NoError(t, err)
	require.Equal(t, []federation.ListedPeer{{Registry: B, BaseURL: nodes[1].MTLSURL()}}, listing.Peers)
	status, _ = readListing(identity.EventStoreID(td))
	require.Equal(t, 403, status)

	// The mainframe funds E's treasury through the saga, four hops away,
	// and a developer on E registers an agent there (its bond locked from
	// a grant of E's treasury).
	var fund ledgerstore.Xfer
	fund, err = a.FundRegistry(ctx, E, 1000*avt, "operator float", "line-funding-"+E)
	require.NoError(t, err)
	var x xferDTO
	require.Eventually(t, func() bool {
		require.Equal(t, 200, c.call("GET", "/api/v1/transfers/"+fund.ID.String(), admin, nil, &x))
		return x.Status == "committed"
	}, 90*time.Second, 100*time.Millisecond, "the allocation to E commits (last %+v)", x)
	ce := httpClient{t, e.URL()}
	bob, _ := registerAgent(ce, ce.adminToken(dataDir, E), "bob-"+suffix)
	registered := time.Now()
	t.Cleanup(func() { terminateBonds(e, bob) })

	// Resolvable from A.
	var res federation.Resolution
	require.Eventually(t, func() bool {
		return c.call("GET", "/api/v1/federation/resolve/"+bob, aliceTok, nil, &res) == 200
	}, 90*time.Second, 100*time.Millisecond, "bob on E becomes resolvable from A")
	t.Logf("an agent registered on E resolvable from A %s after its registration", time.Since(registered).Round(time.Millisecond))
	require.Equal(t, E, res.Registry)
	require.False(t, res.Local)
	// E's signed card travels the line too, relayed by B, C and D: A holds
	// it four hops from its origin, and resolves from it.
	require.Eventually(t, func() bool {
		cards, err := a.CardSync().Cards(ctx, bob)
		require.NoError(t, err)
		return len(cards) == 1 && cards[0].Origin == E && cards[0].Hops == 4
	}, 90*time.Second, 100*time.Millisecond, "E's card for bob reaches A through the line")
	t.Logf("E's signed card for bob held by A %s after its registration", time.Since(registered).Round(time.Millisecond))
	origins, err := a.CardSync().Origins(ctx, bob)
	require.NoError(t, err)
	require.Equal(t, []string{E}, origins)

	// A pays it through the saga, directly to E.
	before, _ := balance(t, e, bob)
	require.Equal(t, 202, c.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": bob, "amount_units": 10 * avt}, &x))
	require.Equal(t, E, x.Target)
	require.Eventually(t, func() bool {
		require.Equal(t, 200, c.call("GET", "/api/v1/transfers/"+x.ID.String(), aliceTok, nil, &x))
		return x.Status == "committed"
	}, 90*time.Second, 100*time.Millisecond, "the transfer to E commits (last %+v)", x)
	got, _ := balance(t, e, bob)
	require.Equal(t, before+10*avt-x.FeeUnits, got)

	// An account claimed by C and E is a conflict shown to the operator,
	// not settled by order.
	carol := "did:theprotocol:" + uuid.NewString()
	for _, n := range []*node.Node{nodes[2], e} {
		_, _, err := n.Ledger.OpenAccount(ctx, carol, ledger.KindAgent)
		require.NoError(t, err)
	}
	var conflict struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	// (A claimant that did not answer in time leaves the other's answer
	// cached briefly: poll.)
	require.Eventually(t, func() bool {
		return c.call("GET", "/api/v1/federation/resolve/"+carol, aliceTok, nil, &conflict) == 409
	}, 90*time.Second, time.Second, "the conflict is seen")
	require.Equal(t, string(apperr.AmbiguousHome), conflict.Error.Code)
	require.Contains(t, conflict.Error.Message, regs[2].ID+", "+E)
	require.GreaterOrEqual(t, nodeMetric(t, a, "federation_home_conflicts_total", "source", "graph"), 1.0)
	require.Equal(t, 409, c.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": carol, "amount_units": avt}, nil))

	// Bounded to 3 hops, E is out of A's reach.
	a.Discovery().SetDepth(3)
	require.Equal(t, 403, c.call("POST", "/api/v1/admin/federation/topology/discover", aliceTok, map[string]any{}, nil), "admins only")
	require.Equal(t, 200, c.call("POST", "/api/v1/admin/federation/topology/discover", admin, map[string]any{}, &top))
	require.Equal(t, []string{B, regs[2].ID, regs[3].ID}, regsOf(top))
	require.Equal(t, 404, c.call("GET", "/api/v1/federation/resolve/"+bob, aliceTok, nil, nil))
	a.Discovery().SetDepth(4)
	require.Contains(t, regsOf(a.Discovery().Run(ctx)), E)

	// A revokes B: B and everything reached only through it are gone at
	// once, and refused.
	require.Equal(t, 200, c.call("POST", "/api/v1/admin/federation/peers/"+B+"/revoke", admin, map[string]any{"reason": "licence withdrawn"}, nil))
	require.Empty(t, topologyRegistries(c))
	_, err = nodes[1].Xfer.Client.Decisions(ctx, A, []uuid.UUID{uuid.New()})
	require.ErrorContains(t, err, string(apperr.PeerNotAdmitted), "B is refused by A")
	for _, r := range regs[1:] {
		require.False(t, a.Xfer.Participant.Allowed(spiffeid.RequireFromPath(td, "/teg/"+r.ID)), "%s is no longer admitted by A", r.ID)
	}
	require.Equal(t, 404, c.call("GET", "/api/v1/federation/resolve/"+bob, aliceTok, nil, nil))
	require.Equal(t, 404, c.call("POST", "/api/v1/transfers", aliceTok, map[string]any{"to": bob, "amount_units": avt}, nil))
	// E learns it from its next walk: A's listing no longer names B.
	require.Eventually(t, func() bool { return !slices.Contains(regsOf(e.Discovery().Topology()), A) }, 30*time.Second, 100*time.Millisecond)
}

// registerAgent signs up a developer through c, grants it the bond from
// the registry's treasury (admin) and registers an agent; it returns the
// agent's DID and access token.
func registerAgent(c httpClient, admin, name string) (string, string) {
	c.t.Helper()
	dev, devTok := c.signUp(name, name+"@example.org")
	require.Equal(c.t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": dev.AccountID, "amount": "100", "reason": "bonds"}, nil))
	var bt struct {
		Token string `json:"bootstrap_token"`
	}
	require.Equal(c.t, 201, c.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
	var ag struct {
		DID          string `json:"did"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	require.Equal(c.t, 201, c.call("POST", "/api/v1/agents", bt.Token, map[string]any{}, &ag))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(c.t, 200, c.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": ag.ClientID, "client_secret": ag.ClientSecret}, &tok))
	return ag.DID, tok.AccessToken
}

func regsOf(t federation.Topology) []string {
	out := []string{}
	for _, e := range t.Registries {
		out = append(out, e.Registry)
	}
	return out
}
