package identity

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// EnvEndpointSocket is the standard Workload API address variable
// (e.g. unix:///run/spire/agent.sock).
const EnvEndpointSocket = "SPIFFE_ENDPOINT_SOCKET"

// DefaultSPIREStartTimeout bounds how long NewSPIRESource waits for the
// first SVID (an agent that has just attested needs several seconds).
const DefaultSPIREStartTimeout = 30 * time.Second

// SPIREOptions configures NewSPIRESource.
type SPIREOptions struct {
	// Addr is the Workload API address; empty: $SPIFFE_ENDPOINT_SOCKET.
	Addr string
	// ID selects this component's SVID when the workload is entitled to
	// several (SPIRE returns them in no fixed order). Zero: the first one.
	ID spiffeid.ID
	// StartTimeout bounds the wait for the first matching SVID.
	StartTimeout time.Duration
	Metrics      *Metrics
}

// SPIRESource is a Source backed by the SPIRE Workload API. The agent pushes
// rotated SVIDs and bundle updates; the source swaps them in atomically.
type SPIRESource struct {
	x509 *workloadapi.X509Source
	id   spiffeid.ID
}

var _ Source = (*SPIRESource)(nil)

// NewSPIRESource connects to the Workload API and waits (up to StartTimeout
// or ctx) until an SVID — the one with opts.ID if set — is available.
func NewSPIRESource(ctx context.Context, opts SPIREOptions) (*SPIRESource, error) {
	addr := opts.Addr
	if addr == "" {
		addr = os.Getenv(EnvEndpointSocket)
	}
	if addr == "" {
		return nil, fmt.Errorf("identity: no Workload API address (set %s)", EnvEndpointSocket)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = DefaultSPIREStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	want := opts.ID
	var lastSerial string // the picker runs on the source's single update goroutine
	picker := func(svids []*x509svid.SVID) *x509svid.SVID {
		for _, s := range svids {
			if want.IsZero() || s.ID == want {
				leaf := s.Certificates[0]
				opts.Metrics.setExpiry(s.ID.String(), float64(leaf.NotAfter.Unix()))
				if serial := leaf.SerialNumber.String(); serial != lastSerial {
					if lastSerial != "" {
						opts.Metrics.rotated(s.ID.String())
					}
					lastSerial = serial
				}
				return s
			}
		}
		return nil
	}
	clientOpts := workloadapi.WithClientOptions(workloadapi.WithAddr(addr))
	var src *workloadapi.X509Source
	var err error
	// The X509Source is ready after the first update, but that update may
	// not yet carry the wanted entry (pitfall: entries reach the agent
	// 5-12 s apart), so poll until the picker finds it.
	for {
		src, err = workloadapi.NewX509Source(ctx, clientOpts, workloadapi.WithDefaultX509SVIDPicker(picker))
		if err == nil {
			if _, gerr := src.GetX509SVID(); gerr == nil {
				break
			} else {
				err = gerr
			}
			src.Close()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("identity: no SVID %v from the Workload API at %s: %w", want, addr, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	return &SPIRESource{x509: src, id: want}, nil
}

// GetX509SVID returns the current SVID (the one with SPIREOptions.ID).
func (s *SPIRESource) GetX509SVID() (*x509svid.SVID, error) {
	svid, err := s.x509.GetX509SVID()
	if err != nil {
		return nil, err
	}
	if svid == nil {
		return nil, fmt.Errorf("identity: Workload API no longer offers %s", s.id)
	}
	return svid, nil
}

// GetX509BundleForTrustDomain returns the own trust domain's bundle and any
// federated bundle the SPIRE server delivers.
func (s *SPIRESource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.x509.GetX509BundleForTrustDomain(td)
}

// Close ends the Workload API stream.
func (s *SPIRESource) Close() error { return s.x509.Close() }
