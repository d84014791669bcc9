package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// Bundle endpoint profiles (SPIFFE Trust Domain and Bundle spec §5.2).
const (
	// ProfileHTTPSSPIFFE: the endpoint presents an SVID (EndpointID) that must
	// chain to the peer's own, already pinned, bundle.
	ProfileHTTPSSPIFFE = "https_spiffe"
	// ProfileHTTPSWeb: the endpoint presents a Web PKI certificate.
	ProfileHTTPSWeb = "https_web"
)

// Federation limits and defaults.
const (
	MaxBundleBytes         = 64 << 10 // a bundle document larger than this is refused
	DefaultFetchTimeout    = 10 * time.Second
	DefaultRefreshInterval = 5 * time.Minute
	MinRefreshInterval     = time.Second
	MaxPeerTrustDomains    = 1024
)

// Peer describes a federated trust domain: where its bundle endpoint is and
// how to authenticate it.
type Peer struct {
	TrustDomain spiffeid.TrustDomain
	// EndpointURL is the https:// URL of the peer's bundle endpoint.
	EndpointURL string
	// Profile is ProfileHTTPSSPIFFE or ProfileHTTPSWeb.
	Profile string
	// EndpointID is the SPIFFE ID the endpoint presents (https_spiffe only).
	EndpointID spiffeid.ID
	// Bundle is the peer's bundle obtained out of band (required for
	// https_spiffe on first use: it authenticates the first fetch; the
	// fetched bundle is then pinned and authenticates the next refresh).
	Bundle *spiffebundle.Bundle
}

// FederationOptions tunes NewBundles. Zero values take defaults.
type FederationOptions struct {
	// WebRoots authenticates https_web endpoints (nil: system roots).
	WebRoots        *x509.CertPool
	FetchTimeout    time.Duration
	RefreshInterval time.Duration
	// ProviderFederates: also trust bundles of other trust domains that the
	// provider itself delivers (SPIRE's federated bundles via the Workload
	// API). A removed peer stays refused either way.
	ProviderFederates bool
	Metrics           *Metrics
}

// Bundles is the x509bundle.Source a node verifies peers with: the own trust
// domain's bundle from the provider plus one pinned bundle per federated
// peer trust domain. Safe for concurrent use; lookups never do I/O.
type Bundles struct {
	ownTD spiffeid.TrustDomain
	own   x509bundle.Source
	opts  FederationOptions

	mu      sync.RWMutex
	peers   map[spiffeid.TrustDomain]*peerState
	removed map[spiffeid.TrustDomain]struct{}
}

type peerState struct {
	peer      Peer
	bundle    *spiffebundle.Bundle
	fetchedAt time.Time
	lastErr   error
}

var _ x509bundle.Source = (*Bundles)(nil)

// NewBundles returns a bundle source for trust domain ownTD whose own bundle
// comes from own (a provider Source).
func NewBundles(ownTD spiffeid.TrustDomain, own x509bundle.Source, opts FederationOptions) *Bundles {
	if opts.FetchTimeout == 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	opts.RefreshInterval = max(opts.RefreshInterval, MinRefreshInterval)
	return &Bundles{ownTD: ownTD, own: own, opts: opts,
		peers: map[spiffeid.TrustDomain]*peerState{}, removed: map[spiffeid.TrustDomain]struct{}{}}
}

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (b *Bundles) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td == b.ownTD {
		return b.own.GetX509BundleForTrustDomain(td)
	}
	// The pinned bundle is read under the lock: Refresh replaces it.
	b.mu.RLock()
	ps, ok := b.peers[td]
	var pinned *spiffebundle.Bundle
	if ok {
		pinned = ps.bundle
	}
	_, removed := b.removed[td]
	b.mu.RUnlock()
	switch {
	case ok:
		return pinned.X509Bundle(), nil
	case !removed && b.opts.ProviderFederates:
		return b.own.GetX509BundleForTrustDomain(td)
	}
	return nil, fmt.Errorf("identity: trust domain %q is not federated", td)
}

// AddPeer fetches the peer's bundle from its endpoint (authenticated per the
// profile), pins it and starts trusting it. Re-adding a peer replaces it.
// Errors: invalid peer, fetch/auth failure (nothing is trusted then).
func (b *Bundles) AddPeer(ctx context.Context, p Peer) error {
	if err := validatePeer(p, b.ownTD); err != nil {
		return err
	}
	b.mu.RLock()
	n := len(b.peers)
	_, exists := b.peers[p.TrustDomain]
	b.mu.RUnlock()
	if !exists && n >= MaxPeerTrustDomains {
		return fmt.Errorf("identity: more than %d federated trust domains", MaxPeerTrustDomains)
	}
	bundle, err := b.fetch(ctx, p, p.Bundle)
	b.opts.Metrics.bundleRefreshed(p.TrustDomain.Name(), result(err))
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.peers[p.TrustDomain] = &peerState{peer: p, bundle: bundle, fetchedAt: time.Now()}
	delete(b.removed, p.TrustDomain)
	b.mu.Unlock()
	return nil
}

// PinPeer trusts bundle for p.TrustDomain without fetching (a bundle pinned
// earlier and loaded from storage); the next Refresh authenticates with it.
func (b *Bundles) PinPeer(p Peer, bundle *spiffebundle.Bundle) error {
	if bundle == nil || bundle.TrustDomain() != p.TrustDomain || len(bundle.X509Authorities()) == 0 {
		return fmt.Errorf("identity: peer %s: pinned bundle missing, empty or for another trust domain", p.TrustDomain)
	}
	p.Bundle = bundle
	if err := validatePeer(p, b.ownTD); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, exists := b.peers[p.TrustDomain]; !exists && len(b.peers) >= MaxPeerTrustDomains {
		return fmt.Errorf("identity: more than %d federated trust domains", MaxPeerTrustDomains)
	}
	b.peers[p.TrustDomain] = &peerState{peer: p, bundle: bundle, fetchedAt: time.Now()}
	delete(b.removed, p.TrustDomain)
	return nil
}

// Pinned returns the bundle currently pinned for td, if any.
func (b *Bundles) Pinned(td spiffeid.TrustDomain) (*spiffebundle.Bundle, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ps, ok := b.peers[td]
	if !ok {
		return nil, false
	}
	return ps.bundle, true
}

// RemovePeer stops trusting td at once: the next handshake from td fails.
func (b *Bundles) RemovePeer(td spiffeid.TrustDomain) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.peers, td)
	b.removed[td] = struct{}{}
}

// PeerStatus reports a federated trust domain's pinned bundle.
type PeerStatus struct {
	TrustDomain spiffeid.TrustDomain
	FetchedAt   time.Time
	Authorities int
	LastError   error
}

// Peers lists the federated trust domains, sorted.
func (b *Bundles) Peers() []PeerStatus {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]PeerStatus, 0, len(b.peers))
	for td, ps := range b.peers {
		out = append(out, PeerStatus{TrustDomain: td, FetchedAt: ps.fetchedAt, Authorities: len(ps.bundle.X509Authorities()), LastError: ps.lastErr})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TrustDomain.Name() < out[j].TrustDomain.Name() })
	return out
}

// Refresh re-fetches every peer's bundle, each authenticated with its
// currently pinned bundle (https_spiffe) or Web PKI (https_web). A failed
// fetch keeps the pinned bundle and is reported in the joined error.
func (b *Bundles) Refresh(ctx context.Context) error {
	b.mu.RLock()
	work := make([]peerState, 0, len(b.peers))
	for _, ps := range b.peers {
		work = append(work, *ps)
	}
	b.mu.RUnlock()
	var errs []error
	for _, ps := range work {
		bundle, err := b.fetch(ctx, ps.peer, ps.bundle)
		b.opts.Metrics.bundleRefreshed(ps.peer.TrustDomain.Name(), result(err))
		b.mu.Lock()
		if cur, ok := b.peers[ps.peer.TrustDomain]; ok && cur.bundle == ps.bundle { // not removed or replaced meanwhile
			cur.lastErr = err
			if err == nil {
				cur.bundle, cur.fetchedAt = bundle, time.Now()
			}
		}
		b.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run refreshes all peers every RefreshInterval until ctx is done.
func (b *Bundles) Run(ctx context.Context) {
	t := time.NewTicker(b.opts.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = b.Refresh(ctx) // failures are counted and kept per peer
		}
	}
}

func validatePeer(p Peer, own spiffeid.TrustDomain) error {
	if p.TrustDomain.IsZero() || p.TrustDomain == own {
		return fmt.Errorf("identity: invalid peer trust domain %q", p.TrustDomain)
	}
	u, err := url.Parse(p.EndpointURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("identity: peer %s: bundle endpoint must be an https URL, got %q", p.TrustDomain, p.EndpointURL)
	}
	switch p.Profile {
	case ProfileHTTPSWeb:
	case ProfileHTTPSSPIFFE:
		if p.EndpointID.IsZero() {
			return fmt.Errorf("identity: peer %s: https_spiffe needs the endpoint SPIFFE ID", p.TrustDomain)
		}
		if p.Bundle == nil {
			return fmt.Errorf("identity: peer %s: https_spiffe needs an initial bundle obtained out of band", p.TrustDomain)
		}
	default:
		return fmt.Errorf("identity: peer %s: unknown bundle endpoint profile %q", p.TrustDomain, p.Profile)
	}
	return nil
}

// fetch GETs and parses the peer's bundle with a size limit and timeout.
// For https_spiffe the endpoint must present EndpointID chaining to pinned.
func (b *Bundles) fetch(ctx context.Context, p Peer, pinned *spiffebundle.Bundle) (*spiffebundle.Bundle, error) {
	var tlsCfg *tls.Config
	switch p.Profile {
	case ProfileHTTPSSPIFFE:
		if pinned == nil {
			return nil, fmt.Errorf("identity: peer %s: no pinned bundle", p.TrustDomain)
		}
		tlsCfg = tlsconfig.TLSClientConfig(pinned, tlsconfig.AuthorizeID(p.EndpointID))
	case ProfileHTTPSWeb:
		tlsCfg = &tls.Config{RootCAs: b.opts.WebRoots, MinVersion: tls.VersionTLS12}
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.FetchTimeout)
	defer cancel()
	client := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:        tlsCfg,
			TLSHandshakeTimeout:    b.opts.FetchTimeout,
			ResponseHeaderTimeout:  b.opts.FetchTimeout,
			MaxResponseHeaderBytes: 16 << 10,
			DisableKeepAlives:      true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.EndpointURL, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("identity: peer %s: %w", p.TrustDomain, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("identity: fetch bundle of %s: %w", p.TrustDomain, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("identity: fetch bundle of %s: status %d", p.TrustDomain, resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("identity: read bundle of %s: %w", p.TrustDomain, err)
	}
	if len(raw) > MaxBundleBytes {
		return nil, fmt.Errorf("identity: bundle of %s exceeds %d bytes", p.TrustDomain, MaxBundleBytes)
	}
	bundle, err := spiffebundle.Parse(p.TrustDomain, raw)
	if err != nil {
		return nil, fmt.Errorf("identity: parse bundle of %s: %w", p.TrustDomain, err)
	}
	if len(bundle.X509Authorities()) == 0 {
		return nil, fmt.Errorf("identity: bundle of %s has no X.509 authorities", p.TrustDomain)
	}
	return bundle, nil
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// BundleEndpointHandler serves td's trust bundle from src in the SPIFFE
// bundle format (GET only). Mount it on a server using
// [TLS.BundleEndpointConfig] (https_spiffe profile) or a Web PKI
// certificate (https_web).
func BundleEndpointHandler(td spiffeid.TrustDomain, src x509bundle.Source) (http.Handler, error) {
	return federation.NewHandler(td, spiffeBundleSource{src})
}

// spiffeBundleSource adapts an x509bundle.Source to spiffebundle.Source.
type spiffeBundleSource struct{ src x509bundle.Source }

func (s spiffeBundleSource) GetBundleForTrustDomain(td spiffeid.TrustDomain) (*spiffebundle.Bundle, error) {
	b, err := s.src.GetX509BundleForTrustDomain(td)
	if err != nil {
		return nil, err
	}
	return spiffebundle.FromX509Bundle(b), nil
}

// BundleEndpointConfig is the server TLS config of an https_spiffe bundle
// endpoint: it presents this node's SVID and asks for no client certificate
// (the bundle is public).
func (t *TLS) BundleEndpointConfig() *tls.Config {
	cfg := tlsconfig.TLSServerConfig(t.svid)
	cfg.MinVersion = tls.VersionTLS12
	return cfg
}
