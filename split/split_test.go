package split

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/bonds"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/registry"
)

var td = spiffeid.RequireTrustDomainFromString("f.theprotocol.test")

func TestAdmit(t *testing.T) {
	self := spiffeid.RequireFromPath(td, "/teg/alpha-main")
	for _, tc := range []struct {
		name   string
		self   spiffeid.ID
		caller spiffeid.ID
		want   bool
	}{
		{"the registry itself", self, self, true},
		{"a peer registry's TEG", self, spiffeid.RequireFromPath(td, "/teg/alpha-op1"), false},
		{"the registry's name under another path", self, spiffeid.RequireFromPath(td, "/registry/alpha-main"), false},
		{"the same path in another trust domain", self, spiffeid.RequireFromPath(spiffeid.RequireTrustDomainFromString("evil.test"), "/teg/alpha-main"), false},
		{"a longer path", self, spiffeid.RequireFromPath(td, "/teg/alpha-main/x"), false},
		{"no self configured", spiffeid.ID{}, spiffeid.ID{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, Admit(tc.self, tc.caller)) })
	}
}

// Property: Admit admits a caller only when it is self, whatever the two
// registry names.
func TestAdmitOnlySelfProperty(t *testing.T) {
	f := func(a, b uint16) bool {
		self := spiffeid.RequireFromPath(td, fmt.Sprintf("/teg/r%d", a))
		caller := spiffeid.RequireFromPath(td, fmt.Sprintf("/teg/r%d", b))
		return Admit(self, caller) == (a == b)
	}
	require.NoError(t, quick.Check(f, nil))
}

// answer is a TLS test server answering every request with status and body.
func answer(t *testing.T, status int, body string) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, srv.Client()
}

// Only the registry's definite "no such agent" is NotFound: the bond
// workflow voids the bond of a missing agent, so nothing else may look
// like one.
func TestRegistryClientAgentNotFoundOnlyWhenTheRegistrySaysSo(t *testing.T) {
	did := registry.NewDID()
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   apperr.Code
	}{
		{"the registry has no such agent", 404, `{"error":{"code":"not_found","message":"no agent"}}`, apperr.NotFound},
		{"no such route (not a registry)", 404, "404 page not found", apperr.Unavailable},
		{"not_found under a 4xx of another code", 400, `{"error":{"code":"not_found","message":"?"}}`, apperr.Unavailable},
		{"not_found under a 5xx", 500, `{"error":{"code":"not_found","message":"?"}}`, apperr.Unavailable},
		{"registry database down", 503, `{"error":{"code":"unavailable","message":"down"}}`, apperr.Unavailable},
		{"a proxy's error page", 502, "<html>bad gateway</html>", apperr.Unavailable},
		{"this process refused", 403, `{"error":{"code":"forbidden","message":"not admitted"}}`, apperr.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, cl := answer(t, tc.status, tc.body)
			c, err := NewRegistryClient(url)
			require.NoError(t, err)
			c.Arm(cl)
			_, err = c.Agent(context.Background(), did)
			require.Equal(t, tc.want, apperr.CodeOf(err), "%v", err)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		url, cl := answer(t, 200, "")
		c, err := NewRegistryClient(url)
		require.NoError(t, err)
		c.Arm(cl)
		c.base = "https://127.0.0.1:1"
		_, err = c.Agent(context.Background(), did)
		require.Equal(t, apperr.Unavailable, apperr.CodeOf(err))
	})
	t.Run("not armed yet", func(t *testing.T) {
		c, err := NewRegistryClient("https://127.0.0.1:1")
		require.NoError(t, err)
		_, err = c.Agent(context.Background(), did)
		require.Equal(t, apperr.Unavailable, apperr.CodeOf(err))
	})
	t.Run("an answer for another agent", func(t *testing.T) {
		url, cl := answer(t, 200, `{"did":"`+registry.NewDID()+`","status":"active"}`)
		c, _ := NewRegistryClient(url)
		c.Arm(cl)
		_, err := c.Agent(context.Background(), did)
		require.Equal(t, apperr.Unavailable, apperr.CodeOf(err))
	})
}

func TestTEGClientKeepsBusinessRefusals(t *testing.T) {
	did, dev := registry.NewDID(), registry.DeveloperSubject(uuid.New())
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   apperr.Code
	}{
		{"a short wallet", 422, `{"error":{"code":"insufficient_funds","message":"short"}}`, apperr.InsufficientFunds},
		{"bad input", 400, `{"error":{"code":"invalid_argument","message":"bad"}}`, apperr.Invalid},
		{"the ledger down", 503, `{"error":{"code":"unavailable","message":"down"}}`, apperr.Unavailable},
		{"an answer for another move", 200, `{"agent_did":"` + did + `","idempotency_key":"other"}`, apperr.Unavailable},
		{"garbage", 200, `not json`, apperr.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, cl := answer(t, tc.status, tc.body)
			c, err := NewTEGClient(url)
			require.NoError(t, err)
			c.Arm(cl)
			_, err = c.LockBond(context.Background(), did, dev, 50, "bond-lock-"+did)
			require.Equal(t, tc.want, apperr.CodeOf(err), "%v", err)
		})
	}
	_, err := NewTEGClient("http://127.0.0.1:9101")
	require.Error(t, err, "plain http is refused")

	url, cl := answer(t, 200, `{"ID":"`+uuid.NewString()+`"}`)
	c, err := NewTEGClient(url)
	require.NoError(t, err)
	c.Arm(cl)
	_, err = c.GetDispute(context.Background(), uuid.New())
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err), "an answer for another dispute")
	url, cl = answer(t, 409, `{"error":{"code":"idempotency_key_reused","message":"case for another agent"}}`)
	c, err = NewTEGClient(url)
	require.NoError(t, err)
	c.Arm(cl)
	_, err = c.SlashStake(context.Background(), ledgerstore.SlashRequest{AgentDID: did, CaseID: "c1", Reason: "r"})
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err))
}

// fakeLedger counts the calls that reach it.
type fakeLedger struct{ calls int }

func (f *fakeLedger) OpenAccount(_ context.Context, id string, kind ledger.Kind) (ledgerstore.Account, bool, error) {
	f.calls++
	return ledgerstore.Account{ID: id, Kind: kind}, true, nil
}

func (f *fakeLedger) LockBond(_ context.Context, did, dev string, units int64, key string) (ledgerstore.BondMove, error) {
	f.calls++
	return ledgerstore.BondMove{ID: uuid.New(), Kind: ledgerstore.BondLock, AgentDID: did, CounterAccount: dev, AmountUnits: units, IdempotencyKey: key}, nil
}

func (f *fakeLedger) VoidBond(_ context.Context, did, dev string, units int64, key string) (ledgerstore.BondMove, error) {
	f.calls++
	return ledgerstore.BondMove{ID: uuid.New(), Kind: ledgerstore.BondVoid, AgentDID: did, CounterAccount: dev, AmountUnits: units, IdempotencyKey: key}, nil
}

func (f *fakeLedger) GetDispute(_ context.Context, id uuid.UUID) (ledgerstore.Dispute, error) {
	f.calls++
	return ledgerstore.Dispute{ID: id}, nil
}

func (f *fakeLedger) SlashStake(_ context.Context, req ledgerstore.SlashRequest) (ledgerstore.Slash, error) {
	f.calls++
	return ledgerstore.Slash{CaseID: req.CaseID, AgentDID: req.AgentDID}, nil
}

type fakeStatuses struct{ calls int }

func (f *fakeStatuses) Status(_ context.Context, did string) (bonds.Status, error) {
	f.calls++
	return bonds.Status{AgentDID: did, State: "locked"}, nil
}

// fromCaller is a request whose verified client SVID is id.
func fromCaller(t *testing.T, id spiffeid.ID, method, path, body string) *http.Request {
	t.Helper()
	ca, err := identity.NewEphemeralCA(td, identity.CAOptions{})
	require.NoError(t, err)
	svid, err := ca.Issue(id, time.Hour)
	require.NoError(t, err)
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.TLS = &tls.ConnectionState{PeerCertificates: svid.Certificates}
	return r
}

// Bad input and strangers are refused before the ledger is touched.
func TestTEGServerRefusesBeforeTheLedger(t *testing.T) {
	self := spiffeid.RequireFromPath(td, "/teg/alpha-main")
	did, dev := registry.NewDID(), registry.DeveloperSubject(uuid.New())
	for _, tc := range []struct {
		name   string
		caller spiffeid.ID
		path   string
		body   string
		status int
	}{
		{"a peer TEG", spiffeid.RequireFromPath(td, "/teg/alpha-op1"), PathBondLock, fmt.Sprintf(`{"agent_did":%q,"dev_account":%q,"amount_units":5,"idempotency_key":"k"}`, did, dev), 403},
		{"a system account", self, PathAccounts, `{"id":"treasury","kind":"system"}`, 400},
		{"a transit account", self, PathAccounts, `{"id":"transit:alpha-op1","kind":"transit"}`, 400},
		{"an ID of another kind", self, PathAccounts, fmt.Sprintf(`{"id":%q,"kind":"agent"}`, dev), 400},
		{"an unknown field", self, PathAccounts, fmt.Sprintf(`{"id":%q,"kind":"agent","units":5}`, did), 400},
		{"a zero bond", self, PathBondLock, fmt.Sprintf(`{"agent_did":%q,"dev_account":%q,"amount_units":0,"idempotency_key":"k"}`, did, dev), 400},
		{"a negative bond", self, PathBondVoid, fmt.Sprintf(`{"agent_did":%q,"dev_account":%q,"amount_units":-5,"idempotency_key":"k"}`, did, dev), 400},
		{"a bond from the treasury", self, PathBondLock, fmt.Sprintf(`{"agent_did":%q,"dev_account":"treasury","amount_units":5,"idempotency_key":"k"}`, did), 400},
		{"no key", self, PathBondLock, fmt.Sprintf(`{"agent_did":%q,"dev_account":%q,"amount_units":5,"idempotency_key":""}`, did, dev), 400},
		{"a slash of a developer", self, PathSlashes, fmt.Sprintf(`{"agent_did":%q,"case_id":"c1","reason":"r"}`, dev), 400},
		{"a slash by a peer", spiffeid.RequireFromPath(td, "/teg/alpha-op1"), PathSlashes, fmt.Sprintf(`{"agent_did":%q,"case_id":"c1","reason":"r"}`, did), 403},
		{"a key too long", self, PathBondLock, fmt.Sprintf(`{"agent_did":%q,"dev_account":%q,"amount_units":5,"idempotency_key":%q}`, did, dev, strings.Repeat("k", 129)), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &fakeLedger{}
			mux := http.NewServeMux()
			(&TEGServer{Ledger: l, Slasher: l, Self: self}).Register(mux)
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, fromCaller(t, tc.caller, "POST", tc.path, tc.body))
			require.Equal(t, tc.status, w.Code, w.Body.String())
			require.Zero(t, l.calls, "nothing reached the ledger")
		})
	}
	t.Run("the registry's own call goes through", func(t *testing.T) {
		l := &fakeLedger{}
		mux := http.NewServeMux()
		(&TEGServer{Ledger: l, Self: self}).Register(mux)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, fromCaller(t, self, "POST", PathBondLock, fmt.Sprintf(`{"agent_did":%q,"dev_account":%q,"amount_units":5,"idempotency_key":"k"}`, did, dev)))
		require.Equal(t, 200, w.Code, w.Body.String())
		require.Equal(t, 1, l.calls)
	})
	t.Run("a bond status of a developer", func(t *testing.T) {
		l := &fakeLedger{}
		st := &fakeStatuses{}
		mux := http.NewServeMux()
		(&TEGServer{Ledger: l, Bonds: st, Self: self}).Register(mux)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, fromCaller(t, self, "GET", PathBonds+dev, ""))
		require.Equal(t, 400, w.Code)
		w = httptest.NewRecorder()
		mux.ServeHTTP(w, fromCaller(t, self, "GET", PathBonds+did, ""))
		require.Equal(t, 200, w.Code)
		require.Equal(t, 1, st.calls)
	})
	t.Run("a dispute by a malformed id", func(t *testing.T) {
		l := &fakeLedger{}
		mux := http.NewServeMux()
		(&TEGServer{Ledger: l, Slasher: l, Self: self}).Register(mux)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, fromCaller(t, self, "GET", PathDisputes+"not-a-uuid", ""))
		require.Equal(t, 400, w.Code)
		require.Zero(t, l.calls)
	})
	t.Run("no client certificate", func(t *testing.T) {
		l := &fakeLedger{}
		mux := http.NewServeMux()
		(&TEGServer{Ledger: l, Self: self}).Register(mux)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("POST", PathAccounts, strings.NewReader(`{"id":"`+did+`","kind":"agent"}`)))
		require.Equal(t, 403, w.Code)
		require.Zero(t, l.calls)
	})
}

type agents map[string]registry.Agent

func (a agents) Agent(_ context.Context, did string) (registry.Agent, error) {
	ag, ok := a[did]
	if !ok {
		return registry.Agent{}, apperr.New(apperr.NotFound, "no agent %s", did)
	}
	return ag, nil
}

// The registry's server answers with its own authentication's verdict and
// says NotFound only for an agent it does not have.
func TestRegistryServer(t *testing.T) {
	self := spiffeid.RequireFromPath(td, "/teg/alpha-main")
	did := registry.NewDID()
	auth := func(c *gin.Context) {
		if c.GetHeader("Authorization") != "Bearer good" {
			api.WriteError(c, apperr.New(apperr.Unauthenticated, "bad token"))
			return
		}
		api.SetPrincipal(c, api.Principal{Subject: did, Scopes: []string{"agent"}, Registry: "alpha-main", TokenID: "t1"})
	}
	mux := http.NewServeMux()
	(&RegistryServer{Auth: auth, Agents: agents{did: {DID: did, Status: registry.AgentActive}}, Self: self}).Register(mux)
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	r := fromCaller(t, self, "POST", PathAuthenticate, "")
	r.Header.Set("Authorization", "Bearer good")
	w := serve(r)
	require.Equal(t, 200, w.Code)
	require.Contains(t, w.Body.String(), `"subject":"`+did+`"`)
	r = fromCaller(t, self, "POST", PathAuthenticate, "")
	r.Header.Set("Authorization", "Bearer bad")
	require.Equal(t, 401, serve(r).Code)
	r = fromCaller(t, spiffeid.RequireFromPath(td, "/teg/alpha-op1"), "POST", PathAuthenticate, "")
	r.Header.Set("Authorization", "Bearer good")
	require.Equal(t, 403, serve(r).Code, "a peer learns nothing about tokens")

	require.Equal(t, 200, serve(fromCaller(t, self, "GET", PathAgents+did, "")).Code)
	w = serve(fromCaller(t, self, "GET", PathAgents+registry.NewDID(), ""))
	require.Equal(t, 404, w.Code)
	require.Contains(t, w.Body.String(), `"not_found"`)
	require.Equal(t, 400, serve(fromCaller(t, self, "GET", PathAgents+"dev:x", "")).Code)
	require.Equal(t, 403, serve(fromCaller(t, spiffeid.RequireFromPath(td, "/teg/alpha-op1"), "GET", PathAgents+did, "")).Code)
}
