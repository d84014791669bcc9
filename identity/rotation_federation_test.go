package identity_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/identity"
)

// runRotationScenario streams requests from client to server while both
// SVIDs rotate, until the client has been served under minServerCerts
// distinct server certificates (and at least minRequests requests went
// through), and requires that no request failed on the way. The stream
// ends on that event, not after a fixed window, so a slow machine (or
// -race) only makes it run longer; deadline is a generous bound on that.
func runRotationScenario(t *testing.T, server, client *node, deadline time.Duration, minServerCerts int) {
	const minRequests = 20
	srv := serve(t, server, identity.AuthorizeID(client.id))
	pooled := client.client(server.id)
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   client.tls.ClientConfig(identity.AuthorizeID(server.id)),
		DisableKeepAlives: true,
	}}
	var (
		mu      sync.Mutex
		serials = map[string]bool{}
		ok      atomic.Int64
		failed  atomic.Int64
		firstEr atomic.Value
		wg      sync.WaitGroup
	)
	var done atomic.Bool
	giveUp := time.Now().Add(deadline)
	enough := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(serials) >= minServerCerts && ok.Load() >= minRequests
	}
	for w := range 4 {
		c := pooled
		if w%2 == 1 {
			c = fresh
		}
		wg.Go(func() {
			for !done.Load() {
				if enough() || time.Now().After(giveUp) {
					done.Store(true)
					return
				}
				resp, err := c.Get(srv.URL)
				if err != nil {
					failed.Add(1)
					firstEr.CompareAndSwap(nil, err.Error())
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				ok.Add(1)
				mu.Lock()
				serials[resp.TLS.PeerCertificates[0].SerialNumber.String()] = true
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	require.Zero(t, failed.Load(), "requests dropped during rotation (first error: %v)", firstEr.Load())
	require.GreaterOrEqual(t, len(serials), minServerCerts, "server SVID should have rotated within %s", deadline)
	require.GreaterOrEqual(t, ok.Load(), int64(minRequests))
	t.Logf("%d requests, %d distinct server SVIDs seen", ok.Load(), len(serials))
}

func TestDevCARotationDropsNoRequests(t *testing.T) {
	ca, err := identity.NewEphemeralCA(alphaTD, identity.CAOptions{})
	require.NoError(t, err)
	// 3 s SVIDs rotated at half-life; session chains live at most ~600 ms
	// (< 1.5 s of guaranteed remaining validity).
	opts := identity.DevSourceOptions{TTL: 3 * time.Second}
	mk := func(path string) *node {
		id := spiffeid.RequireFromPath(alphaTD, path)
		n := devNode(t, ca, path, identity.DevSourceOptions{})
		src, err := identity.NewDevSource(ca, id, identity.DevSourceOptions{TTL: opts.TTL, Metrics: n.metrics})
		require.NoError(t, err)
		t.Cleanup(func() { _ = src.Close() })
		n.src = src
		n.bundles = identity.NewBundles(alphaTD, src, identity.FederationOptions{})
		n.tls = identity.NewTLS(src, n.bundles, identity.TLSOptions{Metrics: n.metrics, SessionMaxAge: 300 * time.Millisecond})
		return n
	}
	server, client := mk("/registry/main"), mk("/teg/main")
	runRotationScenario(t, server, client, time.Minute, 3)
	require.Positive(t, counterValue(t, server, "theprotocol_identity_svid_rotations_total"))
}

func counterValue(t *testing.T, n *node, name string) float64 {
	t.Helper()
	mfs, err := n.reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// serveBundleEndpoint serves n's trust bundle with the https_spiffe profile.
func serveBundleEndpoint(t *testing.T, n *node) string {
	h, err := identity.BundleEndpointHandler(n.id.TrustDomain(), n.src)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h, TLSConfig: n.tls.BundleEndpointConfig(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: discardLog()}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String() + "/"
}

func TestDevCAFederation(t *testing.T) {
	ctx := context.Background()
	alpha, err := identity.NewEphemeralCA(alphaTD, identity.CAOptions{})
	require.NoError(t, err)
	beta, err := identity.NewEphemeralCA(betaTD, identity.CAOptions{})
	require.NoError(t, err)
	a := devNode(t, alpha, "/registry/main", identity.DevSourceOptions{})
	b := devNode(t, beta, "/registry/main", identity.DevSourceOptions{})

	srv := serve(t, a, identity.AuthorizeMemberOf(betaTD))
	_, err = call(b.client(a.id), srv.URL)
	require.Error(t, err, "before federation, beta cannot verify alpha")

	// Each side adds the other: the initial bundle comes out of band (here:
	// the peer CA's bundle), the endpoint fetch is authenticated with it and
	// the fetched bundle is pinned.
	require.NoError(t, a.bundles.AddPeer(ctx, identity.Peer{
		TrustDomain: betaTD, EndpointURL: serveBundleEndpoint(t, b), Profile: identity.ProfileHTTPSSPIFFE,
		EndpointID: b.id, Bundle: beta.SPIFFEBundle(),
	}))
	require.NoError(t, b.bundles.AddPeer(ctx, identity.Peer{
		TrustDomain: alphaTD, EndpointURL: serveBundleEndpoint(t, a), Profile: identity.ProfileHTTPSSPIFFE,
		EndpointID: a.id, Bundle: alpha.SPIFFEBundle(),
	}))
	got, err := call(b.client(a.id), srv.URL)
	require.NoError(t, err)
	require.Equal(t, b.id.String(), got)
	require.NoError(t, a.bundles.Refresh(ctx))
	require.Len(t, a.bundles.Peers(), 1)

	// A wrong endpoint ID fails authentication and trusts nothing.
	gamma := spiffeid.RequireTrustDomainFromString("gamma.theprotocol.test")
	err = a.bundles.AddPeer(ctx, identity.Peer{
		TrustDomain: gamma, EndpointURL: serveBundleEndpoint(t, b), Profile: identity.ProfileHTTPSSPIFFE,
		EndpointID: spiffeid.RequireFromPath(gamma, "/registry/main"), Bundle: beta.SPIFFEBundle(),
	})
	require.Error(t, err)

	// Removing the peer trust domain refuses its next call at once.
	a.bundles.RemovePeer(betaTD)
	_, err = call(b.client(a.id), srv.URL)
	require.Error(t, err)
	waitFor(t, 5*time.Second, "unknown trust domain counted", func() bool {
		return a.failures("server", identity.ReasonUnknownTrustDomain) >= 1
	})
}

func TestFederationHTTPSWebAndLimits(t *testing.T) {
	ctx := context.Background()
	beta, err := identity.NewEphemeralCA(betaTD, identity.CAOptions{})
	require.NoError(t, err)
	h, err := identity.BundleEndpointHandler(betaTD, beta.X509Bundle())
	require.NoError(t, err)
	web := httptest.NewTLSServer(h)
	defer web.Close()
	roots := x509.NewCertPool()
	roots.AddCert(web.Certificate())

	alpha, err := identity.NewEphemeralCA(alphaTD, identity.CAOptions{})
	require.NoError(t, err)
	bundles := identity.NewBundles(alphaTD, alpha.X509Bundle(), identity.FederationOptions{WebRoots: roots, FetchTimeout: 2 * time.Second})
	require.NoError(t, bundles.AddPeer(ctx, identity.Peer{TrustDomain: betaTD, EndpointURL: web.URL, Profile: identity.ProfileHTTPSWeb}))
	got, err := bundles.GetX509BundleForTrustDomain(betaTD)
	require.NoError(t, err)
	require.True(t, got.Equal(beta.X509Bundle()))

	// Untrusted Web PKI root: refused.
	other := identity.NewBundles(alphaTD, alpha.X509Bundle(), identity.FederationOptions{WebRoots: x509.NewCertPool()})
	require.Error(t, other.AddPeer(ctx, identity.Peer{TrustDomain: betaTD, EndpointURL: web.URL, Profile: identity.ProfileHTTPSWeb}))

	// Oversized bundle document: refused.
	huge := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", identity.MaxBundleBytes) + `]}`))
	}))
	defer huge.Close()
	roots.AddCert(huge.Certificate())
	require.ErrorContains(t, bundles.AddPeer(ctx, identity.Peer{
		TrustDomain: spiffeid.RequireTrustDomainFromString("huge.test"), EndpointURL: huge.URL, Profile: identity.ProfileHTTPSWeb,
	}), "exceeds")

	// An endpoint that never answers: only FetchTimeout ends the fetch,
	// which fails with a timeout (the generous bound below catches a fetch
	// that would wait for ever; how long it took is not the point).
	release := make(chan struct{})
	slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	roots.AddCert(slow.Certificate())
	fetched := make(chan error, 1)
	go func() {
		fetched <- bundles.AddPeer(ctx, identity.Peer{
			TrustDomain: spiffeid.RequireTrustDomainFromString("slow.test"), EndpointURL: slow.URL, Profile: identity.ProfileHTTPSWeb,
		})
	}()
	select {
	case err := <-fetched:
		var ne net.Error
		require.True(t, errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()), "want a timeout, got %v", err)
	case <-time.After(time.Minute):
		t.Fatal("a silent bundle endpoint held the fetch past FetchTimeout")
	}

	// Invalid peers.
	require.Error(t, bundles.AddPeer(ctx, identity.Peer{TrustDomain: betaTD, EndpointURL: "http://127.0.0.1/", Profile: identity.ProfileHTTPSWeb}))
	require.Error(t, bundles.AddPeer(ctx, identity.Peer{TrustDomain: betaTD, EndpointURL: web.URL, Profile: identity.ProfileHTTPSSPIFFE}))
	require.Error(t, bundles.AddPeer(ctx, identity.Peer{TrustDomain: alphaTD, EndpointURL: web.URL, Profile: identity.ProfileHTTPSWeb}))
}

// swapBundle is a bundle source whose content the test replaces.
type swapBundle struct {
	mu sync.Mutex
	b  *x509bundle.Bundle
}

func (s *swapBundle) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b, nil
}

func (s *swapBundle) set(b *x509bundle.Bundle) {
	s.mu.Lock()
	s.b = b
	s.mu.Unlock()
}

// A peer that rolls over to a new CA publishes both CAs; the periodic
// refresh (authenticated with the pinned bundle) picks up the new one, so
// the peer's SVIDs from the new CA verify.
func TestFederationPeriodicRefreshFollowsCARollover(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alpha, err := identity.NewEphemeralCA(alphaTD, identity.CAOptions{})
	require.NoError(t, err)
	betaOld, err := identity.NewEphemeralCA(betaTD, identity.CAOptions{})
	require.NoError(t, err)
	betaNew, err := identity.NewEphemeralCA(betaTD, identity.CAOptions{})
	require.NoError(t, err)

	b := devNode(t, betaOld, "/registry/main", identity.DevSourceOptions{})
	published := &swapBundle{b: betaOld.X509Bundle()}
	h, err := identity.BundleEndpointHandler(betaTD, published)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	endpoint := &http.Server{Handler: h, TLSConfig: b.tls.BundleEndpointConfig(), ReadHeaderTimeout: time.Second, ErrorLog: discardLog()}
	go func() { _ = endpoint.ServeTLS(ln, "", "") }()
	defer endpoint.Close()

	bundles := identity.NewBundles(alphaTD, alpha.X509Bundle(), identity.FederationOptions{RefreshInterval: identity.MinRefreshInterval})
	require.NoError(t, bundles.AddPeer(ctx, identity.Peer{
		TrustDomain: betaTD, EndpointURL: "https://" + ln.Addr().String() + "/", Profile: identity.ProfileHTTPSSPIFFE,
		EndpointID: b.id, Bundle: betaOld.SPIFFEBundle(),
	}))
	go bundles.Run(ctx)

	newSVID, err := betaNew.Issue(spiffeid.RequireFromPath(betaTD, "/registry/main"), time.Minute)
	require.NoError(t, err)
	_, _, err = x509svid.Verify(newSVID.Certificates, bundles)
	require.Error(t, err, "new CA not yet published")

	both := x509bundle.FromX509Authorities(betaTD, []*x509.Certificate{betaOld.Certificate(), betaNew.Certificate()})
	published.set(both)
	waitFor(t, 10*time.Second, "refresh to pin the new CA", func() bool {
		_, _, err := x509svid.Verify(newSVID.Certificates, bundles)
		return err == nil
	})
}
