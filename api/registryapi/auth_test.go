package registryapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api/registryapi"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// TestAuthRejections table-tests every way a bearer token can be bad: each
// gets its own clear 401 (or 403 for a valid token without the scope).
func TestAuthRejections(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	devID, _, devTok := n.developer(t)
	did, clientID, secret := n.agent(t, devTok, card("A", "x"))
	agentTok := n.agentToken(t, clientID, secret)
	admin, err := registryapi.CreateAdminClient(context.Background(), n.Store, "ops", n.Clock.Now())
	require.NoError(t, err)
	adminTok := n.agentToken(t, admin.ClientID, admin.ClientSecret)

	signer := n.H.Signer()
	now := n.Clock.Now().Unix()
	base := registry.Claims{
		Issuer: "spiffe://alpha.theprotocol.test/registry/alpha-main", Audience: "theprotocol:alpha", Subject: did,
		IssuedAt: now - 60, NotBefore: now - 60, ExpiresAt: now + 600, ID: "0190aaaa-0000-7000-8000-000000000001",
		Scope: "agent", Registry: "alpha-main", Frame: "alpha", Generation: 1,
	}
	forge := func(mod func(*registry.Claims)) string {
		c := base
		mod(&c)
		tok, err := signer.Sign(c)
		require.NoError(t, err)
		return tok
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, err := auth.NewSigner(auth.SignerOptions{Key: otherKey, Issuer: base.Issuer, Audience: base.Audience, Registry: "alpha-main", Frame: "alpha"})
	require.NoError(t, err)
	foreign, err := otherSigner.Sign(base)
	require.NoError(t, err)
	parts := strings.Split(agentTok, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	sig[10] ^= 1
	badSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	// Same signature over a payload with a different subject.
	otherPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin:00000000-0000-0000-0000-000000000001"}`))
	spliced := parts[0] + "." + otherPayload + "." + parts[2]
	noneTok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."

	// A revoked token (by ID) and a token of a rotated credential.
	revokedTok := n.agentToken(t, clientID, secret)
	r := n.do(t, req{Method: "POST", Path: "/api/v1/auth/revoke", Token: revokedTok})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	_, apiKey2 := func() (string, string) {
		r := n.do(t, req{Method: "POST", Path: "/api/v1/developers", Body: map[string]string{"name": "Bob", "email": "bob@example.org"}})
		return r.Str(t, "developer_id"), r.Str(t, "api_key")
	}()
	rotatedTok := n.devToken(t, apiKey2)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/developers/me/api-key", Token: n.devToken(t, apiKey2)})
	require.Equal(t, http.StatusOK, r.Status)

	agentPath := "/api/v1/agents/" + did
	cases := []struct {
		name    string
		path    string
		auth    string // full Authorization header; "" = none
		status  int
		message string
	}{
		{"valid agent token", agentPath, "Bearer " + agentTok, 200, ""},
		{"valid developer token", agentPath, "Bearer " + devTok, 200, ""},
		{"valid admin token", "/api/v1/admin/registry/stats", "Bearer " + adminTok, 200, ""},
		{"missing", agentPath, "", 401, "needs a bearer token"},
		{"wrong scheme", agentPath, "Basic " + agentTok, 401, "must be \"Bearer <token>\""},
		{"empty bearer", agentPath, "Bearer ", 401, "must be \"Bearer <token>\""},
		{"malformed", agentPath, "Bearer not-a-token", 401, "malformed"},
		{"malformed base64", agentPath, "Bearer a.b.c", 401, "malformed"},
		{"too long", agentPath, "Bearer " + strings.Repeat("a", 5000), 401, "malformed"},
		{"alg none", agentPath, "Bearer " + noneTok, 401, "malformed"},
		{"bad signature", agentPath, "Bearer " + badSig, 401, "signature is invalid"},
		{"spliced payload", agentPath, "Bearer " + spliced, 401, "signature is invalid"},
		{"unknown key", agentPath, "Bearer " + foreign, 401, "unknown key"},
		{"expired", agentPath, "Bearer " + forge(func(c *registry.Claims) { c.IssuedAt, c.NotBefore, c.ExpiresAt = now-7200, now-7200, now-3600 }), 401, "expired"},
		{"not yet valid", agentPath, "Bearer " + forge(func(c *registry.Claims) { c.NotBefore = now + 300 }), 401, "not valid yet"},
		{"other issuer", agentPath, "Bearer " + forge(func(c *registry.Claims) { c.Issuer = "spiffe://beta.theprotocol.test/registry/beta-main" }), 401, "another registry"},
		{"scope above subject", agentPath, "Bearer " + forge(func(c *registry.Claims) { c.Scope = "admin" }), 401, "does not match its subject"},
		{"revoked by id", agentPath, "Bearer " + revokedTok, 401, "revoked"},
		{"credential rotated", agentPath, "Bearer " + rotatedTok, 401, "revoked"},
		{"stale generation", agentPath, "Bearer " + forge(func(c *registry.Claims) { c.Generation = 7 }), 401, "revoked"},
		{"unknown subject", agentPath, "Bearer " + forge(func(c *registry.Claims) { c.Subject = registry.NewDID() }), 401, "revoked"},
		{"agent on admin route", "/api/v1/admin/registry/stats", "Bearer " + agentTok, 403, "needs scope"},
		{"developer on admin route", "/api/v1/admin/registry/stats", "Bearer " + devTok, 403, "needs scope"},
		{"agent on developer route", "/api/v1/developers/me", "Bearer " + agentTok, 403, "needs scope"},
		{"admin on developer route", "/api/v1/bootstrap-tokens", "Bearer " + adminTok, 403, "needs scope"},
	}
	_ = devID
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.auth != "" {
				h["Authorization"] = tc.auth
			}
			method := "GET"
			if strings.HasSuffix(tc.path, "bootstrap-tokens") {
				method = "POST"
			}
			r := n.do(t, req{Method: method, Path: tc.path, Header: h})
			require.Equal(t, tc.status, r.Status, "%s", r.Body)
			if tc.status >= 400 {
				require.Contains(t, r.JSON(t)["error"].(map[string]any)["message"], tc.message)
				if tc.status == 401 {
					require.Equal(t, "unauthenticated", r.ErrCode(t))
					require.Contains(t, r.Header.Get("WWW-Authenticate"), "Bearer")
				} else {
					require.Equal(t, "forbidden", r.ErrCode(t))
				}
			}
		})
	}

	// Another developer may not manage this agent; its creator may.
	_, _, otherDev := n.developer(t)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/agents/" + did + "/credentials", Token: otherDev})
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "DELETE", Path: "/api/v1/agents/" + did, Token: adminTok})
	require.Equal(t, http.StatusOK, r.Status, "admins may deregister: %s", r.Body)
}

// TestBootstrapTokenConcurrentOverHTTP: N concurrent agent creations with
// one bootstrap token → exactly one 201, the rest 401, one agent row.
func TestBootstrapTokenConcurrentOverHTTP(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(o *registryapi.Options) { o.RateLimits.Disabled = true })
	_, _, devTok := n.developer(t)
	bt := n.bootstrap(t, devTok, nil)
	const workers = 12
	statuses := make([]int, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt, Body: map[string]any{}}).Status
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for _, s := range statuses {
		if s == http.StatusCreated {
			created++
		} else {
			require.Equal(t, http.StatusUnauthorized, s)
		}
	}
	require.Equal(t, 1, created, "statuses: %v", statuses)
	require.Equal(t, 1, n.countRows(t, "agents"))
}

func TestBootstrapTokenExpiresOverHTTP(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(o *registryapi.Options) { o.BootstrapTTL = time.Minute })
	_, _, devTok := n.developer(t)
	bt := n.bootstrap(t, devTok, nil)
	n.Clock.Advance(time.Minute + time.Second)
	r := n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt})
	require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), "invalid, expired or already used")
}

// TestTokenEndpointRateLimited: brute force against one credential is cut
// off with 429 and Retry-After; other credentials are unaffected.
func TestTokenEndpointRateLimited(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(o *registryapi.Options) {
		o.RateLimits.PerCredential = registryapi.RateLimit{Interval: time.Minute, Burst: 3}
	})
	_, _, devTok := n.developer(t)
	_, clientID, secret := n.agent(t, devTok, nil)
	guess := func(s string) resp {
		return n.do(t, req{Method: "POST", Path: "/api/v1/auth/token", Body: map[string]string{"grant_type": "client_credentials", "client_id": clientID, "client_secret": s}})
	}
	for range 3 {
		require.Equal(t, http.StatusUnauthorized, guess("tps_wrong").Status)
	}
	r := guess(secret)
	require.Equal(t, http.StatusTooManyRequests, r.Status, "even the right secret waits once the bucket is empty")
	require.Equal(t, "rate_limited", r.ErrCode(t))
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	n.Clock.Advance(time.Minute)
	require.Equal(t, http.StatusOK, guess(secret).Status)
}

// The routes that take no body accept an empty JSON object as well as no
// body at all (clients that always send `{}` are common), and still refuse
// a body with fields.
func TestBodylessRoutesAcceptAnEmptyObject(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	_, _, devTok := n.developer(t)
	_, clientID, secret := n.agent(t, devTok, card("A", "x"))

	r := n.do(t, req{Method: "POST", Path: "/api/v1/developers/me/api-key", Token: devTok, Body: map[string]any{"extra": 1}})
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/developers/me/api-key", Token: devTok, Body: map[string]any{}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	tok := n.agentToken(t, clientID, secret)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/auth/revoke", Token: tok, Body: map[string]any{}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/auth/revoke", Token: tok})
	require.Equal(t, http.StatusUnauthorized, r.Status, "the revoked token no longer authenticates")
}
