package sdk_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/sdk"
	"github.com/theprotocol-dev/theprotocol/sdk/apiclient"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// Two agents talk A2A over mutual TLS with SVIDs they enrolled for through
// the public API: the callee learns the caller's DID from its certificate.
// A caller without an SVID, with a certificate the frame's CA did not
// issue, or whose agent was deregistered (its SVID still unexpired) is
// refused, and so is a callee that is not the agent the caller meant.
func TestAgentsCallEachOtherOverMTLS(t *testing.T) {
	ctx := context.Background()
	n, frame, creds := startNode(t)
	api := sdk.New(n.URL())
	admin := api.Agent(creds.ClientID, creds.ClientSecret)
	dev, err := api.SignUp(ctx, "mTLS developer", fmt.Sprintf("mtls-%d@example.org", time.Now().UnixNano()))
	require.NoError(t, err)
	require.NoError(t, admin.Grant(ctx, dev.AccountID, 200*100_000_000, "three bonds"))
	devc := api.Developer(dev.APIKey)
	register := func() (sdk.AgentCredentials, *sdk.Client) {
		c, err := devc.RegisterAgent(ctx)
		require.NoError(t, err)
		t.Cleanup(func() {
			_ = n.Temporal.TerminateWorkflow(context.Background(), workflows.BondWorkflowID(c.DID), "", "test over")
		})
		return c, api.Agent(c.ClientID, c.ClientSecret)
	}
	callerCreds, callerAPI := register()
	calleeCreds, calleeAPI := register()
	goneCreds, goneAPI := register()

	// The callee serves message/send to authenticated agents only, and
	// asks its registry about every caller (no cache: the deregistration
	// below must show at once).
	callee := &sdk.A2AAuthenticator{Client: calleeAPI, DID: calleeCreds.DID, StatusTTL: -1}
	require.NoError(t, callee.Enrol(ctx))
	srvTLS, err := callee.ServerTLSConfig()
	require.NoError(t, err)
	srvURL := serveTLS(t, srvTLS, &sdk.A2AHandler{Callers: callee, Handle: func(ctx context.Context, in sdk.A2AMessage) (sdk.A2AMessage, error) {
		did, _ := sdk.CallerDID(ctx)
		return sdk.A2AMessage{Parts: []sdk.A2APart{{Kind: "text", Text: did + " said " + in.Text()}}}, nil
	}})

	// The SVID names the agent's DID in the frame's trust domain, lives no
	// longer than asked, and chains to the bundle the registry handed out.
	var shift atomic.Int64 // the caller's clock runs ahead by this much
	caller := &sdk.A2AAuthenticator{Client: callerAPI, DID: callerCreds.DID, TTL: 10 * time.Minute,
		Now: func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }}
	require.NoError(t, caller.Enrol(ctx))
	svid, err := caller.GetX509SVID()
	require.NoError(t, err)
	td, err := identity.FrameTrustDomain(frame)
	require.NoError(t, err)
	wantID, err := identity.AgentID(td, callerCreds.DID)
	require.NoError(t, err)
	require.Equal(t, wantID, svid.ID)
	require.LessOrEqual(t, time.Until(caller.ExpiresAt()), 10*time.Minute+time.Second)

	// The authenticated call: the callee names the caller by its DID.
	cc, err := caller.A2AClient(callerAPI, calleeCreds.DID)
	require.NoError(t, err)
	out, err := cc.SendMessage(ctx, srvURL, "hello", 0)
	require.NoError(t, err)
	require.Equal(t, callerCreds.DID+" said hello", out.Text())

	// Renewal: before half its lifetime the SVID is kept; past it, the
	// next handshake enrols afresh (new key, new certificate) by itself.
	shift.Store(int64(4 * time.Minute))
	same, err := caller.GetX509SVID()
	require.NoError(t, err)
	require.Equal(t, svid.Certificates[0].SerialNumber, same.Certificates[0].SerialNumber)
	shift.Store(int64(6 * time.Minute))
	svid2, err := caller.GetX509SVID()
	require.NoError(t, err)
	require.NotEqual(t, svid.Certificates[0].SerialNumber, svid2.Certificates[0].SerialNumber)
	require.NotEqual(t, svid.PrivateKey, svid2.PrivateKey)
	shift.Store(0)
	cc, err = caller.A2AClient(callerAPI, calleeCreds.DID)
	require.NoError(t, err)
	_, err = cc.SendMessage(ctx, srvURL, "again", 0)
	require.NoError(t, err)

	// Paid and authenticated at once: the callee sells to known agents
	// only; the caller pays through its registry and calls over mTLS.
	const price = 100_000_000
	require.NoError(t, admin.Grant(ctx, callerCreds.DID, 5*price, "a paid call"))
	node, err := api.Node(ctx)
	require.NoError(t, err)
	paidURL := serveTLS(t, srvTLS, &sdk.A2AHandler{Callers: callee,
		Verifier: &sdk.PaymentVerifier{Payee: calleeCreds.DID, PriceUnits: price, Currency: node.Currency, Settler: calleeAPI,
			Keys: &sdk.KeyCache{Registries: []*sdk.Client{sdk.New(n.URL())}}},
		Handle: func(ctx context.Context, in sdk.A2AMessage) (sdk.A2AMessage, error) {
			did, _ := sdk.CallerDID(ctx)
			return sdk.A2AMessage{Parts: []sdk.A2APart{{Kind: "text", Text: "paid by " + did}}}, nil
		}})
	before, err := callerAPI.Balance(ctx, callerCreds.DID)
	require.NoError(t, err)
	out, err = cc.SendMessage(ctx, paidURL, "sell me", price)
	require.NoError(t, err)
	require.Equal(t, "paid by "+callerCreds.DID, out.Text())
	after, err := callerAPI.Balance(ctx, callerCreds.DID)
	require.NoError(t, err)
	require.Equal(t, int64(price), before.Liquid()-after.Liquid())

	// The caller authenticates the callee too: expecting another agent at
	// that address fails the handshake.
	wrong, err := caller.A2AClient(callerAPI, goneCreds.DID)
	require.NoError(t, err)
	_, err = wrong.SendMessage(ctx, srvURL, "hello", 0)
	require.Error(t, err)

	// No SVID: a TLS client without a certificate is refused.
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test plays a careless caller
	anon := callerAPI.WithAuth(nil)
	anon.HTTP = noCert
	_, err = anon.SendMessage(ctx, srvURL, "hello", 0)
	require.Error(t, err, "a caller without an SVID must be refused")

	// A certificate for the same agent ID from a CA the frame does not
	// trust is refused.
	rogueCA, err := identity.NewEphemeralCA(td, identity.CAOptions{})
	require.NoError(t, err)
	rogue, err := rogueCA.Issue(wantID, 10*time.Minute)
	require.NoError(t, err)
	rogueClient := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsconfig.MTLSClientConfig(rogue, callee, tlsconfig.AuthorizeAny())}}
	anon.HTTP = rogueClient
	_, err = anon.SendMessage(ctx, srvURL, "hello", 0)
	require.Error(t, err, "an SVID of a foreign CA must be refused")

	// Revocation: an agent enrols and calls, then is deregistered; its
	// still-valid SVID no longer gets in, and it cannot enrol again.
	gone := &sdk.A2AAuthenticator{Client: goneAPI, DID: goneCreds.DID}
	require.NoError(t, gone.Enrol(ctx))
	gc, err := gone.A2AClient(goneAPI, calleeCreds.DID)
	require.NoError(t, err)
	_, err = gc.SendMessage(ctx, srvURL, "before", 0)
	require.NoError(t, err)
	res, err := devc.API().DeregisterAgentWithResponse(ctx, goneCreds.DID, &apiclient.DeregisterAgentParams{IdempotencyKey: sdk.NewIdempotencyKey()})
	require.NoError(t, sdk.CheckResult(res, err))
	require.True(t, time.Now().Before(gone.ExpiresAt()), "the SVID is still unexpired")
	gc, err = gone.A2AClient(goneAPI, calleeCreds.DID)
	require.NoError(t, err)
	_, err = gc.SendMessage(ctx, srvURL, "after", 0)
	var rpcErr *sdk.RPCError
	require.ErrorAs(t, err, &rpcErr, "a deregistered agent's SVID must be refused")
	require.Contains(t, rpcErr.Message, "not registered and active")
	require.Error(t, gone.Enrol(ctx), "a deregistered agent cannot enrol")

	// The same checks as plain HTTP middleware: the caller's DID reaches
	// the handler; a revoked caller gets 403.
	mwURL := serveTLS(t, srvTLS, callee.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		did, _ := sdk.CallerDID(r.Context())
		_, _ = w.Write([]byte(did))
	})))
	hc, err := caller.HTTPClient(calleeCreds.DID)
	require.NoError(t, err)
	requireGet(t, hc, mwURL, http.StatusOK, callerCreds.DID)
	hc, err = gone.HTTPClient(calleeCreds.DID)
	require.NoError(t, err)
	requireGet(t, hc, mwURL, http.StatusForbidden, "")

	t.Run("enrolment refusals", func(t *testing.T) { enrolmentRefusals(t, callerAPI, devc, callerCreds.DID) })
}

// serveTLS serves h with cfg on a loopback port (httptest's StartTLS would
// put its own certificate before the SVID).
func serveTLS(t *testing.T, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h, TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String()
}

func requireGet(t *testing.T, hc *http.Client, url string, status int, body string) {
	t.Helper()
	resp, err := hc.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, status, resp.StatusCode)
	if body != "" {
		buf := make([]byte, 256)
		k, _ := resp.Body.Read(buf)
		require.Equal(t, body, string(buf[:k]))
	}
}

// enrolmentRefusals: enrolment refuses another agent's DID, a CSR that is
// not one, a CSR whose signature does not verify, a lifetime out of range
// and a developer's token, each with its code.
func enrolmentRefusals(t *testing.T, agent, devc *sdk.Client, did string) {
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	require.NoError(t, err)
	good := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	bad := append([]byte(nil), der...)
	bad[len(bad)-3] ^= 0xff // the signature's last bytes
	ttl := func(s int64) *int64 { return &s }
	enrol := func(c *sdk.Client, did string, body apiclient.EnrolRequest) error {
		res, err := c.API().EnrolAgentSVIDWithResponse(ctx, did, &apiclient.EnrolAgentSVIDParams{}, body)
		return sdk.CheckResult(res, err)
	}
	for _, tc := range []struct {
		name   string
		client *sdk.Client
		did    string
		body   apiclient.EnrolRequest
		code   string
	}{
		{"another agent's DID", agent, "did:theprotocol:" + uuid.NewString(), apiclient.EnrolRequest{Csr: good}, "forbidden"},
		{"not a CSR", agent, did, apiclient.EnrolRequest{Csr: "junk"}, "invalid_argument"},
		{"a certificate, not a CSR", agent, did, apiclient.EnrolRequest{Csr: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "invalid_argument"},
		{"a forged CSR signature", agent, did, apiclient.EnrolRequest{Csr: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: bad}))}, "invalid_argument"},
		{"a lifetime over the cap", agent, did, apiclient.EnrolRequest{Csr: good, TtlSeconds: ttl(3601)}, "invalid_argument"},
		{"a lifetime of zero", agent, did, apiclient.EnrolRequest{Csr: good, TtlSeconds: ttl(0)}, "invalid_argument"},
		{"a developer's token", devc, did, apiclient.EnrolRequest{Csr: good}, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := enrol(tc.client, tc.did, tc.body)
			require.True(t, sdk.IsCode(err, tc.code), "want %s, got %v", tc.code, err)
		})
	}
	require.NoError(t, enrol(agent, did, apiclient.EnrolRequest{Csr: good, TtlSeconds: ttl(60)}))
}

// The SDK's DID ↔ SPIFFE ID mapping is the registry's (package identity).
func TestAgentSPIFFEIDMatchesTheRegistry(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("f.theprotocol.test")
	did := "did:theprotocol:" + uuid.NewString()
	want, err := identity.AgentID(td, did)
	require.NoError(t, err)
	got, err := sdk.AgentSPIFFEID(td, did)
	require.NoError(t, err)
	require.Equal(t, want, got)
	back, err := sdk.AgentDID(got)
	require.NoError(t, err)
	require.Equal(t, did, back)
	for _, bad := range []string{"did:web:example.org", "did:theprotocol:NOT-A-UUID", "did:theprotocol:" + uuid.NewString() + "/x"} {
		_, err := sdk.AgentSPIFFEID(td, bad)
		require.Error(t, err, bad)
	}
	_, err = sdk.AgentDID(spiffeid.RequireFromPath(td, "/teg/r1"))
	require.Error(t, err)
}
