package identity_test

import (
	"context"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/testenv/spire"
)

// spireSVIDTTL is the workload SVID lifetime in the SPIRE tests: short, so
// the rotation test sees the agent rotate (at about half-life).
const spireSVIDTTL = spire.SVIDTTL

// spireNode connects a component to s's agent's Workload API as id,
// polling until the agent serves that SVID.
func spireNode(t *testing.T, s *spire.Server, id spiffeid.ID) *node {
	t.Helper()
	src, err := identity.NewSPIRESource(context.Background(), identity.SPIREOptions{
		Addr: s.WorkloadAPIAddr(), ID: id, StartTimeout: 90 * time.Second,
	})
	require.NoError(t, err, s.Logs())
	t.Cleanup(func() { _ = src.Close() })
	// Sessions must not outlive an SVID: chains ≤ ~2 s, SVIDs rotate with ≥ ~5 s left.
	return newNode(t, src, id, identity.TLSOptions{SessionMaxAge: time.Second})
}

func TestSPIREScenarios(t *testing.T) {
	start := time.Now()
	s := spire.StartServer(t, alphaTD)
	serverID := s.Entry("/registry/main")
	clientID := s.Entry("/teg/main")
	strangerID := s.Entry("/teg/other")
	s.StartAgent()
	server, client, stranger := spireNode(t, s, serverID), spireNode(t, s, clientID), spireNode(t, s, strangerID)
	t.Logf("SPIRE server+agent up, 3 SVIDs fetched in %s", time.Since(start).Round(100*time.Millisecond))
	// Kept until it has expired (after the rotation scenario): a genuinely
	// SPIRE-issued SVID past its NotAfter.
	firstClientSVID, err := client.src.GetX509SVID()
	require.NoError(t, err)

	// A dev-CA client in another trust domain that trusts alpha's SPIRE
	// bundle, while alpha has not federated with it.
	beta, err := identity.NewEphemeralCA(betaTD, identity.CAOptions{})
	require.NoError(t, err)
	foreign := devNode(t, beta, "/teg/main", identity.DevSourceOptions{})
	alphaBundle, err := server.src.GetX509BundleForTrustDomain(alphaTD)
	require.NoError(t, err)
	foreign.tls = identity.NewTLS(foreign.src, x509bundle.NewSet(beta.X509Bundle(), alphaBundle), identity.TLSOptions{Metrics: foreign.metrics})

	runAuthzScenarios(t, fabric{ // expired: see the subtest at the end
		server: server, client: client, stranger: stranger, foreign: foreign,
		ownBundle: server.src,
	})

	t.Run("rotation drops no requests", func(t *testing.T) {
		// The agent rotates 20 s SVIDs at about half-life.
		runRotationScenario(t, server, client, 2*spireSVIDTTL+30*time.Second, 2)
	})

	t.Run("expired SVID", func(t *testing.T) {
		notAfter := firstClientSVID.Certificates[0].NotAfter
		waitFor(t, spireSVIDTTL+10*time.Second, "first client SVID to expire", func() bool { return time.Now().After(notAfter) })
		srv := serve(t, server, identity.AuthorizeID(client.id))
		c := identity.NewTLS(firstClientSVID, server.src, identity.TLSOptions{}).
			HTTPClient(identity.AuthorizeID(server.id), identity.HTTPClientOptions{Timeout: 5 * time.Second})
		_, err := call(c, srv.URL)
		require.Error(t, err)
		waitFor(t, 5*time.Second, "expired counted", func() bool {
			return server.failures("server", identity.ReasonExpired) == 1
		})
	})
}

func TestSPIREFederation(t *testing.T) {
	start := time.Now()
	a := spire.StartServer(t, alphaTD)
	b := spire.StartServer(t, betaTD)
	a.Federate(b)
	b.Federate(a)
	aID := a.Entry("/registry/main", betaTD)
	bID := b.Entry("/registry/main", alphaTD)
	a.StartAgent()
	b.StartAgent()
	an, bn := spireNode(t, a, aID), spireNode(t, b, bID)
	// The federated bundle reaches the workload once the servers have
	// fetched each other's bundle endpoint and the agents synced: poll.
	waitFor(t, 90*time.Second, "federated bundles delivered\n"+a.Logs()+b.Logs(), func() bool {
		_, e1 := an.src.GetX509BundleForTrustDomain(betaTD)
		_, e2 := bn.src.GetX509BundleForTrustDomain(alphaTD)
		return e1 == nil && e2 == nil
	})
	t.Logf("two federated SPIRE deployments ready in %s", time.Since(start).Round(100*time.Millisecond))

	srv := serve(t, an, identity.AuthorizeMemberOf(betaTD))
	got, err := call(bn.client(aID), srv.URL)
	require.NoError(t, err)
	require.Equal(t, bID.String(), got)

	// Removing the peer trust domain on alpha refuses beta's next call even
	// though SPIRE still delivers beta's bundle.
	an.bundles.RemovePeer(betaTD)
	_, err = call(bn.client(aID), srv.URL)
	require.Error(t, err)
}
