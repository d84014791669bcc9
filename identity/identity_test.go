package identity_test

import (
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/identity"
)

var (
	alphaTD = spiffeid.RequireTrustDomainFromString("alpha.theprotocol.test")
	betaTD  = spiffeid.RequireTrustDomainFromString("beta.theprotocol.test")
)

// fabric is the cast of the authorisation scenarios, provided either by the
// dev CA or by a real SPIRE server + agent.
type fabric struct {
	server   *node // spiffe://<td>/registry/main
	client   *node // spiffe://<td>/teg/main, an allowed peer
	stranger *node // spiffe://<td>/teg/other, same trust domain, not allowed
	// foreign is a client in another trust domain that trusts the server's
	// bundle but whose own trust domain the server has not federated with.
	foreign *node
	// expired, when non-nil, is a client source holding an expired SVID
	// issued by the server's trust domain.
	expired x509svid.Source
	// ownBundle is the server trust domain's bundle.
	ownBundle x509bundle.Source
}

// runAuthzScenarios is the list of authorisation scenarios, run against any fabric.
func runAuthzScenarios(t *testing.T, f fabric) {
	peers := identity.NewMemPeerSet(f.client.id)
	srv := serve(t, f.server, identity.AuthorizePeers(peers))
	peers.OnRemove(func(id spiffeid.ID) { srv.tracker.CloseID(id) })

	t.Run("allowed", func(t *testing.T) {
		got, err := call(f.client.client(f.server.id), srv.URL)
		require.NoError(t, err)
		require.Equal(t, f.client.id.String(), got)
	})

	t.Run("client refuses a server with an unexpected ID", func(t *testing.T) {
		_, err := call(f.client.client(spiffeid.RequireFromPath(f.server.id.TrustDomain(), "/registry/impostor")), srv.URL)
		require.Error(t, err)
		require.Equal(t, 1.0, f.client.failures("client", identity.ReasonUnauthorized))
	})

	t.Run("wrong ID in the same trust domain", func(t *testing.T) {
		before := f.server.failures("server", identity.ReasonUnauthorized)
		_, err := call(f.stranger.client(f.server.id), srv.URL)
		require.Error(t, err)
		waitFor(t, 5*time.Second, "unauthorized counted", func() bool {
			return f.server.failures("server", identity.ReasonUnauthorized) == before+1
		})
	})

	t.Run("foreign trust domain not federated", func(t *testing.T) {
		_, err := call(f.foreign.client(f.server.id), srv.URL)
		require.Error(t, err)
		waitFor(t, 5*time.Second, "unknown trust domain counted", func() bool {
			return f.server.failures("server", identity.ReasonUnknownTrustDomain) == 1
		})
	})

	t.Run("expired SVID", func(t *testing.T) {
		if f.expired == nil {
			t.Skip("this fabric cannot mint an expired SVID on demand (the SPIRE suite tests one after it expires)")
		}
		c := identity.NewTLS(f.expired, f.ownBundle, identity.TLSOptions{}).
			HTTPClient(identity.AuthorizeID(f.server.id), identity.HTTPClientOptions{Timeout: 5 * time.Second})
		_, err := call(c, srv.URL)
		require.Error(t, err)
		waitFor(t, 5*time.Second, "expired counted", func() bool {
			return f.server.failures("server", identity.ReasonExpired) == 1
		})
	})

	t.Run("no client certificate", func(t *testing.T) {
		// Authenticates the server by SPIFFE ID, presents nothing.
		c := plainTLSClient(tlsconfig.TLSClientConfig(f.ownBundle, tlsconfig.AuthorizeID(f.server.id)))
		_, err := call(c, srv.URL)
		require.Error(t, err)
		waitFor(t, 5*time.Second, "no certificate counted", func() bool {
			return f.server.failures("server", identity.ReasonNoCertificate) == 1
		})
	})

	t.Run("removed peer refused on its next call", func(t *testing.T) {
		// Keep-alive client: its pooled connection is closed on removal.
		pooled := f.client.client(f.server.id)
		// New connection per call: the second call resumes the TLS session,
		// which must be re-authorised too.
		fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig:   f.client.tls.ClientConfig(identity.AuthorizeID(f.server.id)),
			DisableKeepAlives: true,
		}}
		for range 2 {
			_, err := call(pooled, srv.URL)
			require.NoError(t, err)
		}
		resp, err := fresh.Get(srv.URL)
		require.NoError(t, err)
		resp.Body.Close()
		resp, err = fresh.Get(srv.URL)
		require.NoError(t, err)
		resp.Body.Close()
		require.True(t, resp.TLS.DidResume, "second fresh connection should resume the TLS session")

		peers.Remove(f.client.id)

		_, err = call(pooled, srv.URL)
		require.Error(t, err, "pooled connection must not survive removal")
		_, err = call(fresh, srv.URL)
		require.Error(t, err, "resumed session must be re-authorised")

		peers.Add(f.client.id)
		_, err = call(f.client.client(f.server.id), srv.URL)
		require.NoError(t, err, "re-added peer is accepted again")
	})
}

func TestDevCAScenarios(t *testing.T) {
	dir := t.TempDir()
	alpha, err := identity.OpenCA(dir, alphaTD, identity.CAOptions{})
	require.NoError(t, err)
	beta, err := identity.NewEphemeralCA(betaTD, identity.CAOptions{})
	require.NoError(t, err)

	expired, err := alpha.IssueAt(spiffeid.RequireFromPath(alphaTD, "/teg/main"), time.Now().Add(-2*time.Hour), time.Hour)
	require.NoError(t, err)

	foreign := devNode(t, beta, "/teg/main", identity.DevSourceOptions{})
	// The foreign client trusts alpha (so the server's refusal is what is
	// tested), but alpha has not federated with beta.
	foreignTrust := x509bundle.NewSet(beta.X509Bundle(), alpha.X509Bundle())
	foreign.tls = identity.NewTLS(foreign.src, foreignTrust, identity.TLSOptions{Metrics: foreign.metrics})

	runAuthzScenarios(t, fabric{
		server:    devNode(t, alpha, "/registry/main", identity.DevSourceOptions{}),
		client:    devNode(t, alpha, "/teg/main", identity.DevSourceOptions{}),
		stranger:  devNode(t, alpha, "/teg/other", identity.DevSourceOptions{}),
		foreign:   foreign,
		expired:   expired,
		ownBundle: alpha.X509Bundle(),
	})
}

func TestOpenCAPersistsWithPrivateKey(t *testing.T) {
	dir := t.TempDir()
	ca1, err := identity.OpenCA(dir, alphaTD, identity.CAOptions{})
	require.NoError(t, err)
	ca2, err := identity.OpenCA(dir, alphaTD, identity.CAOptions{})
	require.NoError(t, err)
	require.True(t, ca1.Certificate().Equal(ca2.Certificate()), "reopening must load the same CA")

	caDir := identity.CADir(dir, alphaTD)
	require.Equal(t, filepath.Join(dir, "ca", "alpha.theprotocol.test"), caDir)
	st, err := os.Stat(filepath.Join(caDir, "ca.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	st, err = os.Stat(caDir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())

	// A CA directory holding another trust domain's CA is refused.
	require.NoError(t, os.Rename(caDir, identity.CADir(dir, betaTD)))
	_, err = identity.OpenCA(dir, betaTD, identity.CAOptions{})
	require.ErrorContains(t, err, "not for trust domain")
}

func TestIssuedSVIDShape(t *testing.T) {
	ca, err := identity.NewEphemeralCA(alphaTD, identity.CAOptions{})
	require.NoError(t, err)
	for _, path := range []string{"/registry/main", "/teg/main", "/eventstore"} {
		id := spiffeid.RequireFromPath(alphaTD, path)
		svid, err := ca.Issue(id, 10*time.Minute)
		require.NoError(t, err)
		leaf := svid.Certificates[0]
		require.Len(t, leaf.URIs, 1)
		require.Equal(t, id.String(), leaf.URIs[0].String())
		require.False(t, leaf.IsCA)
		require.Equal(t, x509.KeyUsageDigitalSignature, leaf.KeyUsage)
		require.WithinDuration(t, time.Now().Add(10*time.Minute), leaf.NotAfter, 5*time.Second)
		gotID, _, err := x509svid.Verify(svid.Certificates, ca.X509Bundle())
		require.NoError(t, err)
		require.Equal(t, id, gotID)
	}
	_, err = ca.Issue(spiffeid.RequireFromPath(betaTD, "/teg/main"), time.Minute)
	require.ErrorContains(t, err, "cannot issue")
	svid, err := ca.Issue(spiffeid.RequireFromPath(alphaTD, "/teg/main"), 365*24*time.Hour)
	require.NoError(t, err)
	require.LessOrEqual(t, time.Until(svid.Certificates[0].NotAfter), identity.MaxSVIDTTL)
}

func TestAuthorizers(t *testing.T) {
	a := spiffeid.RequireFromPath(alphaTD, "/registry/a")
	b := spiffeid.RequireFromPath(betaTD, "/registry/b")
	require.NoError(t, identity.AuthorizeID(a)(a, nil))
	require.Error(t, identity.AuthorizeID(a)(b, nil))
	require.NoError(t, identity.AuthorizeMemberOf(betaTD)(b, nil))
	require.Error(t, identity.AuthorizeMemberOf(betaTD)(a, nil))
	any := identity.AuthorizeAnyOf(identity.AuthorizeID(a), identity.AuthorizeMemberOf(betaTD))
	require.NoError(t, any(a, nil))
	require.NoError(t, any(b, nil))
	require.Error(t, any(spiffeid.RequireFromPath(alphaTD, "/x"), nil))

	set := identity.NewMemPeerSet(a)
	var removed []string
	set.OnRemove(func(id spiffeid.ID) { removed = append(removed, id.String()) })
	authz := identity.AuthorizePeers(set)
	require.NoError(t, authz(a, nil))
	set.Replace([]spiffeid.ID{b})
	require.Error(t, authz(a, nil))
	require.NoError(t, authz(b, nil))
	require.Equal(t, []string{a.String()}, removed)
	require.True(t, strings.Contains(authz(a, nil).Error(), "not an active peer"))
}

func TestIDsFromTopology(t *testing.T) {
	topo := config.DevTopology()
	td, err := identity.FrameTrustDomain(topo.Frames[0])
	require.NoError(t, err)
	id, err := identity.RegistryID(td, topo.Frames[0].Registries[0].ID)
	require.NoError(t, err)
	require.Equal(t, "spiffe://alpha.theprotocol.test/registry/alpha-main", id.String())
	id, err = identity.TEGID(td, "alpha-op1")
	require.NoError(t, err)
	require.Equal(t, "spiffe://alpha.theprotocol.test/teg/alpha-op1", id.String())
	require.Equal(t, "spiffe://alpha.theprotocol.test/eventstore", identity.EventStoreID(td).String())
	_, err = identity.RegistryID(td, "../x")
	require.Error(t, err)
}
