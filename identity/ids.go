package identity

import (
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/config"
)

// FrameTrustDomain parses the frame's trust_domain.
func FrameTrustDomain(f config.Frame) (spiffeid.TrustDomain, error) {
	td, err := spiffeid.TrustDomainFromString(f.TrustDomain)
	if err != nil {
		return spiffeid.TrustDomain{}, fmt.Errorf("identity: frame %s trust_domain %q: %w", f.ID, f.TrustDomain, err)
	}
	return td, nil
}

// RegistryID is spiffe://<td>/registry/<registry-id>.
func RegistryID(td spiffeid.TrustDomain, registryID string) (spiffeid.ID, error) {
	return spiffeid.FromSegments(td, "registry", registryID)
}

// TEGID is spiffe://<td>/teg/<registry-id>.
func TEGID(td spiffeid.TrustDomain, registryID string) (spiffeid.ID, error) {
	return spiffeid.FromSegments(td, "teg", registryID)
}

// EventStoreID is spiffe://<td>/eventstore (one EventStore per frame).
func EventStoreID(td spiffeid.TrustDomain) spiffeid.ID {
	return spiffeid.RequireFromSegments(td, "eventstore")
}
