package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Client session resumption limits.
const (
	// ClientSessionCacheSize bounds the TLS session cache of each client config.
	ClientSessionCacheSize = 256
	// DefaultSessionMaxAge bounds how long a client reuses a TLS session.
	DefaultSessionMaxAge = time.Minute
)

// TLSOptions tunes NewTLS. The zero value is the production default.
type TLSOptions struct {
	Metrics *Metrics
	// SessionMaxAge bounds client-side session reuse: a session chain is
	// resumed for at most about 2*SessionMaxAge after the full handshake that
	// authenticated the server. That must be shorter than the least remaining
	// lifetime of any SVID a server presents (half the SVID TTL with rotation
	// at half-life): a resumed session whose server SVID has expired is
	// refused, not silently renegotiated. Default 1 min.
	SessionMaxAge time.Duration
	// DisableResumption turns client-side session resumption off.
	DisableResumption bool
}

// TLS builds mutual-TLS configs from a node's SVID source and bundle source.
// Every config it returns:
//   - presents the source's current SVID on each handshake (rotation needs no
//     restart),
//   - verifies the peer's SVID chain against the bundle of the peer's trust
//     domain (own or federated) and then runs the Authorizer,
//   - re-verifies and re-authorises on TLS session resumption too, so neither
//     a removed peer, a dropped trust domain nor an expired SVID can resume,
//   - requires TLS 1.3 and counts refusals in Metrics by reason.
//
// A TLS is immutable and safe for concurrent use.
type TLS struct {
	svid    x509svid.Source
	bundles x509bundle.Source
	metrics *Metrics
	opts    TLSOptions
}

// NewTLS returns a config builder. bundles is usually a *[Bundles] (own trust
// domain + federated peers).
func NewTLS(svid x509svid.Source, bundles x509bundle.Source, opts TLSOptions) *TLS {
	if opts.SessionMaxAge <= 0 {
		opts.SessionMaxAge = DefaultSessionMaxAge
	}
	return &TLS{svid: svid, bundles: bundles, metrics: opts.Metrics, opts: opts}
}

// ServerConfig returns a server config that requires a client SVID allowed
// by authz. A client without a certificate is refused (reason
// no_certificate).
func (t *TLS) ServerConfig(authz Authorizer) *tls.Config {
	cfg := tlsconfig.MTLSServerConfig(t.svid, t.bundles, t.wrapAuthz(authz))
	// RequestClientCert (rather than go-spiffe's RequireAnyClientCert) lets a
	// missing certificate reach our verifier, which refuses it and counts it;
	// the verifier below never accepts an empty chain.
	cfg.ClientAuth = tls.RequestClientCert
	t.harden(cfg, "server")
	installSessionPolicy(cfg, t.opts.SessionMaxAge)
	return cfg
}

// ClientConfig returns a client config that presents this node's SVID and
// accepts only a server SVID allowed by authz. It carries a bounded session
// cache, so repeated connections to a server resume (and are re-authorised).
func (t *TLS) ClientConfig(authz Authorizer) *tls.Config {
	cfg := tlsconfig.MTLSClientConfig(t.svid, t.bundles, t.wrapAuthz(authz))
	if !t.opts.DisableResumption {
		cfg.ClientSessionCache = &agedSessionCache{
			lru: tls.NewLRUClientSessionCache(ClientSessionCacheSize), maxAge: t.opts.SessionMaxAge,
			born: map[string]time.Time{},
		}
	}
	t.harden(cfg, "client")
	return cfg
}

// agedSessionCache bounds how long a session chain is reused. crypto/tls
// does not check the server certificate's expiry when resuming under
// go-spiffe's custom verification, and our resumption check refuses an
// expired one, so sessions must not outlive the SVID they were made with. A
// resumed connection yields new tickets that still carry the server
// certificate of the original full handshake, so the age is measured per
// cache key from the first Put of a chain: a session is reused for at most
// about 2*maxAge after the handshake that authenticated the server.
type agedSessionCache struct {
	lru    tls.ClientSessionCache
	maxAge time.Duration
	mu     sync.Mutex
	born   map[string]time.Time // cache key -> start of its session chain; bounded
}

func (c *agedSessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	b, ok := c.born[key]
	c.mu.Unlock()
	if !ok || time.Since(b) > c.maxAge {
		return nil, false
	}
	return c.lru.Get(key)
}

func (c *agedSessionCache) Put(key string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs == nil {
		delete(c.born, key)
		c.lru.Put(key, nil)
		return
	}
	now := time.Now()
	if b, ok := c.born[key]; ok && now.Sub(b) <= c.maxAge {
		c.lru.Put(key, cs) // same chain (or a newer one: conservative)
		return
	}
	if len(c.born) >= 4*ClientSessionCacheSize {
		for k, b := range c.born {
			if now.Sub(b) > c.maxAge {
				delete(c.born, k)
			}
		}
	}
	if len(c.born) >= 8*ClientSessionCacheSize {
		return // over the bound: this key is not resumable until entries age out
	}
	c.born[key] = now
	c.lru.Put(key, cs)
}

// HTTPClientOptions bounds an mTLS HTTP client. Zero values take defaults.
type HTTPClientOptions struct {
	Timeout             time.Duration // whole request (default 30s)
	MaxIdleConnsPerHost int           // default 8
}

// HTTPClient returns an HTTP client whose every connection is mTLS with
// ClientConfig(authz). Use "https://" URLs.
func (t *TLS) HTTPClient(authz Authorizer, opts HTTPClientOptions) *http.Client {
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MaxIdleConnsPerHost == 0 {
		opts.MaxIdleConnsPerHost = 8
	}
	return &http.Client{
		Timeout: opts.Timeout,
		Transport: &http.Transport{
			TLSClientConfig:       t.ClientConfig(authz),
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: opts.Timeout,
			MaxIdleConnsPerHost:   opts.MaxIdleConnsPerHost,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
	}
}

// authzError marks a refusal by the Authorizer (as opposed to an invalid SVID).
type authzError struct{ err error }

func (e authzError) Error() string { return e.err.Error() }
func (e authzError) Unwrap() error { return e.err }

func (t *TLS) wrapAuthz(authz Authorizer) Authorizer {
	if authz == nil {
		panic("identity: nil Authorizer")
	}
	return func(id spiffeid.ID, chains [][]*x509.Certificate) error {
		if err := authz(id, chains); err != nil {
			return authzError{err}
		}
		return nil
	}
}

// errNoCertificate refuses a peer that presented no certificate.
var errNoCertificate = errors.New("identity: peer presented no certificate")

// harden wraps the verifier installed by go-spiffe to count failures by
// reason, refuses empty chains, adds the same check on resumed sessions
// (crypto/tls skips VerifyPeerCertificate when resuming) and pins TLS 1.3.
func (t *TLS) harden(cfg *tls.Config, side string) {
	inner := cfg.VerifyPeerCertificate
	verify := func(raw [][]byte, chains [][]*x509.Certificate) error {
		if len(raw) == 0 {
			t.metrics.handshakeFailed(side, ReasonNoCertificate)
			return errNoCertificate
		}
		err := inner(raw, chains)
		if err != nil {
			t.metrics.handshakeFailed(side, t.classify(raw, err))
		}
		return err
	}
	cfg.VerifyPeerCertificate = verify
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if !cs.DidResume {
			return nil // verified by VerifyPeerCertificate during this handshake
		}
		raw := make([][]byte, len(cs.PeerCertificates))
		for i, c := range cs.PeerCertificates {
			raw[i] = c.Raw
		}
		return verify(raw, nil)
	}
	cfg.MinVersion = tls.VersionTLS13
}

func (t *TLS) classify(raw [][]byte, err error) string {
	var ae authzError
	if errors.As(err, &ae) {
		return ReasonUnauthorized
	}
	leaf, perr := x509.ParseCertificate(raw[0])
	if perr != nil {
		return ReasonInvalid
	}
	if now := time.Now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return ReasonExpired
	}
	id, ierr := x509svid.IDFromCert(leaf)
	if ierr != nil {
		return ReasonInvalid
	}
	if _, berr := t.bundles.GetX509BundleForTrustDomain(id.TrustDomain()); berr != nil {
		return ReasonUnknownTrustDomain
	}
	return ReasonInvalid
}

// PeerID returns the SPIFFE ID of the verified peer of an mTLS connection
// (server handlers: PeerID(r.TLS)).
func PeerID(cs *tls.ConnectionState) (spiffeid.ID, error) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, errNoCertificate
	}
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("identity: peer ID: %w", err)
	}
	return id, nil
}
