package identity_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/identity"
)

// node is one component under test: its source, bundles and TLS builder.
type node struct {
	id      spiffeid.ID
	src     identity.Source
	bundles *identity.Bundles
	tls     *identity.TLS
	metrics *identity.Metrics
	reg     *prometheus.Registry
}

func newNode(t testing.TB, src identity.Source, id spiffeid.ID, tlsOpts identity.TLSOptions) *node {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := identity.NewMetrics(reg)
	b := identity.NewBundles(id.TrustDomain(), src, identity.FederationOptions{Metrics: m, ProviderFederates: isSPIRE(src)})
	tlsOpts.Metrics = m
	return &node{id: id, src: src, bundles: b, tls: identity.NewTLS(src, b, tlsOpts), metrics: m, reg: reg}
}

func isSPIRE(src identity.Source) bool {
	_, ok := src.(*identity.SPIRESource)
	return ok
}

func devNode(t testing.TB, ca *identity.CA, path string, opts identity.DevSourceOptions) *node {
	t.Helper()
	id := spiffeid.RequireFromPath(ca.TrustDomain(), path)
	src, err := identity.NewDevSource(ca, id, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Close() })
	return newNode(t, src, id, identity.TLSOptions{})
}

// failures returns the handshake failure count for side and reason.
func (n *node) failures(side, reason string) float64 {
	mfs, _ := n.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "theprotocol_identity_handshake_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var s, r string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "side":
					s = l.GetValue()
				case "reason":
					r = l.GetValue()
				}
			}
			if s == side && r == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// server is an mTLS HTTP server answering with the caller's SPIFFE ID.
type server struct {
	URL     string
	srv     *http.Server
	tracker *identity.ConnTracker
}

func serve(t testing.TB, n *node, authz identity.Authorizer) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tracker := identity.NewConnTracker()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := identity.PeerID(r.TLS)
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, id.String())
		}),
		TLSConfig:         n.tls.ServerConfig(authz),
		ReadHeaderTimeout: 5 * time.Second,
		ConnState:         tracker.ConnState,
		ErrorLog:          discardLog(),
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &server{URL: "https://" + ln.Addr().String() + "/", srv: srv, tracker: tracker}
}

// call GETs url and returns the body (the server's view of our ID).
func call(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status + ": " + string(body))
	}
	return string(body), nil
}

// client returns an mTLS HTTP client of n that accepts only server ID want.
func (n *node) client(want spiffeid.ID) *http.Client {
	return n.tls.HTTPClient(identity.AuthorizeID(want), identity.HTTPClientOptions{Timeout: 10 * time.Second})
}

// waitFor polls cond every 50 ms until it holds or timeout elapses.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// plainTLSClient authenticates the server by SPIFFE but presents no
// certificate.
func plainTLSClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}
