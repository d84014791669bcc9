package identity

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Source is what every component gets from a provider: its own current
// X.509 SVID and the trust bundle(s) of its own trust domain. Wrap the bundle
// side in [Bundles] to add federated peers. Close stops rotation / the
// Workload API stream; after Close, GetX509SVID keeps returning the last SVID.
type Source interface {
	x509svid.Source
	x509bundle.Source
	Close() error
}

// Dev source defaults.
const (
	DefaultDevSVIDTTL = time.Hour
	// DefaultRotateFraction: rotate once half the SVID lifetime has elapsed, so
	// a failing CA leaves half a lifetime to recover.
	DefaultRotateFraction = 0.5
	// rotateRetry bounds the wait between failed rotation attempts.
	rotateRetry = time.Second
)

// DevSourceOptions tunes NewDevSource. The zero value gives hour-long SVIDs
// rotated at half-life.
type DevSourceOptions struct {
	TTL            time.Duration // SVID lifetime (default DefaultDevSVIDTTL)
	RotateFraction float64       // of TTL after which to rotate, in (0,1) (default 0.5)
	Metrics        *Metrics
}

// DevSource serves SVIDs issued by a dev [CA] for one SPIFFE ID and replaces
// the SVID before it expires. The swap is atomic: handshakes in flight keep
// the certificate they already read, connections already established are
// unaffected, and every new handshake gets the current SVID.
type DevSource struct {
	ca      *CA
	id      spiffeid.ID
	ttl     time.Duration
	frac    float64
	metrics *Metrics

	mu   sync.RWMutex
	svid *x509svid.SVID

	cancel context.CancelFunc
	done   chan struct{}
}

var _ Source = (*DevSource)(nil)

// NewDevSource issues a first SVID for id from ca and starts rotating it in
// the background until Close. It fails if id is not in ca's trust domain.
func NewDevSource(ca *CA, id spiffeid.ID, opts DevSourceOptions) (*DevSource, error) {
	if opts.TTL == 0 {
		opts.TTL = DefaultDevSVIDTTL
	}
	if opts.RotateFraction == 0 {
		opts.RotateFraction = DefaultRotateFraction
	}
	if opts.RotateFraction <= 0 || opts.RotateFraction >= 1 {
		return nil, fmt.Errorf("identity: RotateFraction %v not in (0,1)", opts.RotateFraction)
	}
	s := &DevSource{ca: ca, id: id, ttl: opts.TTL, frac: opts.RotateFraction, metrics: opts.Metrics, done: make(chan struct{})}
	svid, err := ca.Issue(id, opts.TTL)
	if err != nil {
		return nil, err
	}
	s.set(svid, false)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx)
	return s, nil
}

// GetX509SVID returns the current SVID. It implements x509svid.Source.
func (s *DevSource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the CA's bundle for its own trust
// domain and an error for any other. It implements x509bundle.Source.
func (s *DevSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != s.ca.td {
		return nil, fmt.Errorf("identity: no bundle for trust domain %q", td)
	}
	return s.ca.X509Bundle(), nil
}

// Rotate replaces the SVID now (the background loop does this on schedule).
func (s *DevSource) Rotate() error {
	svid, err := s.ca.Issue(s.id, s.ttl)
	if err != nil {
		return err
	}
	s.set(svid, true)
	return nil
}

// Close stops rotation. It is idempotent.
func (s *DevSource) Close() error {
	s.cancel()
	<-s.done
	return nil
}

func (s *DevSource) set(svid *x509svid.SVID, rotation bool) {
	s.mu.Lock()
	s.svid = svid
	s.mu.Unlock()
	s.metrics.setExpiry(s.id.String(), float64(svid.Certificates[0].NotAfter.Unix()))
	if rotation {
		s.metrics.rotated(s.id.String())
	}
}

func (s *DevSource) run(ctx context.Context) {
	defer close(s.done)
	for {
		cur, _ := s.GetX509SVID()
		leaf := cur.Certificates[0]
		// The dev CA backdates NotBefore by clockSkew; schedule from issuance.
		issued := leaf.NotBefore.Add(clockSkew)
		life := leaf.NotAfter.Sub(issued)
		due := issued.Add(time.Duration(float64(life) * s.frac))
		wait := max(time.Until(due), 0)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := s.Rotate(); err != nil {
			// Retry soon; the current SVID stays in service until it expires.
			select {
			case <-ctx.Done():
				return
			case <-time.After(rotateRetry):
			}
		}
	}
}
