package svidapi_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/svidapi"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/registry"
)

type agents map[string]string // DID → status

func (a agents) Agent(_ context.Context, did string) (registry.Agent, error) {
	st, ok := a[did]
	if !ok {
		return registry.Agent{}, apperr.New(apperr.NotFound, "agent %s not found", did)
	}
	return registry.Agent{DID: did, Status: st}, nil
}

// server mounts the route with a principal set by the test (the real node
// puts the registry's token middleware there).
func server(t *testing.T, ca svidapi.CA, ags agents, subject string, scopes ...string) *httptest.Server {
	gin.SetMode(gin.TestMode)
	e := gin.New()
	h := &svidapi.Handler{CA: ca, Agents: ags, Auth: func(c *gin.Context) {
		api.SetPrincipal(c, api.Principal{Subject: subject, Scopes: scopes})
	}}
	h.Mount(e.Group("/api/v1"))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func csr(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		DNSNames: []string{"ignored.example"}, // the SVID names only the agent
	}, key)
	require.NoError(t, err)
	return key, der
}

func post(t *testing.T, srv *httptest.Server, did string, body any) (int, []byte) {
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(srv.URL+"/api/v1/agents/"+did+"/svid", "application/json", bytes.NewReader(raw))
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// An active agent gets an SVID for exactly its DID, bound to its key,
// chaining to the bundle in the same answer, within the lifetime asked.
func TestEnrolIssuesTheAgentsSVID(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("f.theprotocol.test")
	ca, err := identity.NewEphemeralCA(td, identity.CAOptions{})
	require.NoError(t, err)
	did := "did:theprotocol:" + uuid.NewString()
	srv := server(t, ca, agents{did: registry.AgentActive}, did, api.ScopeAgent)
	key, der := csr(t)
	ttl := int64(120)
	for _, enc := range []string{
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
		base64.StdEncoding.EncodeToString(der),
	} {
		status, body := post(t, srv, did, svidapi.EnrolRequest{CSR: enc, TTLSeconds: &ttl})
		require.Equal(t, http.StatusCreated, status, string(body))
		var out svidapi.EnrolResponse
		require.NoError(t, json.Unmarshal(body, &out))
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		svid, err := x509svid.Parse([]byte(out.SVIDPEM), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
		require.NoError(t, err, "the SVID certifies the CSR's key")
		want, err := identity.AgentID(td, did)
		require.NoError(t, err)
		require.Equal(t, want, svid.ID)
		require.Equal(t, want.String(), out.SPIFFEID)
		require.Empty(t, svid.Certificates[0].DNSNames)
		bundle, err := x509bundle.Parse(td, []byte(out.BundlePEM))
		require.NoError(t, err)
		_, _, err = x509svid.Verify(svid.Certificates, bundle)
		require.NoError(t, err)
		require.WithinDuration(t, time.Now().Add(2*time.Minute), out.ExpiresAt, 5*time.Second)
	}
}

// Refusals, each with its status, and nothing issued for any of them.
func TestEnrolRefusals(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("f.theprotocol.test")
	ca, err := identity.NewEphemeralCA(td, identity.CAOptions{})
	require.NoError(t, err)
	did, gone := "did:theprotocol:"+uuid.NewString(), "did:theprotocol:"+uuid.NewString()
	ags := agents{did: registry.AgentActive, gone: "deregistered"}
	_, der := csr(t)
	good := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	forged := append([]byte(nil), der...)
	forged[len(forged)-3] ^= 0xff
	big := make([]byte, 9<<10)
	for i := range big {
		big[i] = 'A'
	}
	ttl := func(s int64) *int64 { return &s }
	for _, tc := range []struct {
		name    string
		ca      svidapi.CA
		subject string
		scopes  []string
		did     string
		body    any
		status  int
	}{
		{"another agent's DID", ca, did, []string{api.ScopeAgent}, gone, svidapi.EnrolRequest{CSR: good}, http.StatusForbidden},
		{"a developer token", ca, "dev:" + uuid.NewString(), []string{api.ScopeDeveloper}, did, svidapi.EnrolRequest{CSR: good}, http.StatusForbidden},
		{"a deregistered agent", ca, gone, []string{api.ScopeAgent}, gone, svidapi.EnrolRequest{CSR: good}, http.StatusUnprocessableEntity},
		{"an empty CSR", ca, did, []string{api.ScopeAgent}, did, svidapi.EnrolRequest{}, http.StatusBadRequest},
		{"not base64", ca, did, []string{api.ScopeAgent}, did, svidapi.EnrolRequest{CSR: "not base64!"}, http.StatusBadRequest},
		{"a PEM certificate", ca, did, []string{api.ScopeAgent}, did, svidapi.EnrolRequest{CSR: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, http.StatusBadRequest},
		{"two PEM blocks", ca, did, []string{api.ScopeAgent}, did, svidapi.EnrolRequest{CSR: good + good}, http.StatusBadRequest},
		{"a forged signature", ca, did, []string{api.ScopeAgent}, did, svidapi.EnrolRequest{CSR: base64.StdEncoding.EncodeToString(forged)}, http.StatusBadRequest},
		{"an oversized CSR", ca, did, []string{api.ScopeAgent}, did, svidapi.EnrolRequest{CSR: string(big)}, http.StatusBadRequest},
		{"a TTL over the cap", ca, did, []string{api.ScopeAgent}, did, svidapi.EnrolRequest{CSR: good, TTLSeconds: ttl(3601)}, http.StatusBadRequest},
		{"a negative TTL", ca, did, []string{api.ScopeAgent}, did, svidapi.EnrolRequest{CSR: good, TTLSeconds: ttl(-1)}, http.StatusBadRequest},
		{"an unknown field", ca, did, []string{api.ScopeAgent}, did, map[string]any{"csr": good, "spiffe_id": "spiffe://x/y"}, http.StatusBadRequest},
		{"no CA (SPIRE)", nil, did, []string{api.ScopeAgent}, did, svidapi.EnrolRequest{CSR: good}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t, tc.ca, ags, tc.subject, tc.scopes...)
			status, body := post(t, srv, tc.did, tc.body)
			require.Equal(t, tc.status, status, string(body))
			require.NotContains(t, string(body), "BEGIN CERTIFICATE")
		})
	}
}
