package identity

import (
	"crypto/x509"
	"fmt"
	"sync"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// Authorizer decides, after the peer's SVID has been verified against the
// trust bundle of its trust domain, whether that SPIFFE ID may talk to us.
// It is go-spiffe's tlsconfig.Authorizer; it runs on every handshake,
// including resumed ones ([TLS] re-runs it), so it must be cheap and must not
// block on I/O.
type Authorizer = tlsconfig.Authorizer

// AuthorizeID allows exactly id.
func AuthorizeID(id spiffeid.ID) Authorizer { return tlsconfig.AuthorizeID(id) }

// AuthorizeOneOf allows any of ids.
func AuthorizeOneOf(ids ...spiffeid.ID) Authorizer { return tlsconfig.AuthorizeOneOf(ids...) }

// AuthorizeMemberOf allows any ID in trust domain td.
func AuthorizeMemberOf(td spiffeid.TrustDomain) Authorizer { return tlsconfig.AuthorizeMemberOf(td) }

// AuthorizeAnyOf allows a peer that at least one of authorizers allows.
func AuthorizeAnyOf(authorizers ...Authorizer) Authorizer {
	return func(id spiffeid.ID, chains [][]*x509.Certificate) error {
		for _, a := range authorizers {
			if a(id, chains) == nil {
				return nil
			}
		}
		return fmt.Errorf("unexpected ID %q", id)
	}
}

// PeerSet is a live set of SPIFFE IDs allowed to call (e.g. the active rows
// of peer_registries). Allowed is called on every handshake and must answer
// from memory, without I/O; implementations must be safe for concurrent use.
type PeerSet interface {
	Allowed(id spiffeid.ID) bool
}

// AuthorizePeers allows the IDs that peers currently allows. Because the set
// is consulted per handshake, removing a peer refuses its next connection
// (established connections are not torn down; callers that need that close
// them, see [MemPeerSet.OnRemove]).
func AuthorizePeers(peers PeerSet) Authorizer {
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if !peers.Allowed(id) {
			return fmt.Errorf("%q is not an active peer", id)
		}
		return nil
	}
}

// MemPeerSet is an in-memory PeerSet, the cache a store of peer_registries
// keeps current (Replace after each load, Add/Remove on admin changes).
type MemPeerSet struct {
	mu       sync.RWMutex
	ids      map[spiffeid.ID]struct{}
	onRemove []func(spiffeid.ID)
}

// NewMemPeerSet returns a set holding ids.
func NewMemPeerSet(ids ...spiffeid.ID) *MemPeerSet {
	s := &MemPeerSet{ids: make(map[spiffeid.ID]struct{}, len(ids))}
	for _, id := range ids {
		s.ids[id] = struct{}{}
	}
	return s
}

// Allowed reports whether id is in the set.
func (s *MemPeerSet) Allowed(id spiffeid.ID) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.ids[id]
	return ok
}

// Add allows id.
func (s *MemPeerSet) Add(id spiffeid.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[id] = struct{}{}
}

// Remove disallows id; the next handshake from id is refused. Callbacks
// registered with OnRemove run after the set changed.
func (s *MemPeerSet) Remove(id spiffeid.ID) {
	s.mu.Lock()
	delete(s.ids, id)
	cbs := append([]func(spiffeid.ID){}, s.onRemove...)
	s.mu.Unlock()
	for _, cb := range cbs {
		cb(id)
	}
}

// Replace swaps the whole set (after reloading peer_registries); IDs no
// longer present are reported to OnRemove callbacks.
func (s *MemPeerSet) Replace(ids []spiffeid.ID) {
	next := make(map[spiffeid.ID]struct{}, len(ids))
	for _, id := range ids {
		next[id] = struct{}{}
	}
	s.mu.Lock()
	var gone []spiffeid.ID
	for id := range s.ids {
		if _, ok := next[id]; !ok {
			gone = append(gone, id)
		}
	}
	s.ids = next
	cbs := append([]func(spiffeid.ID){}, s.onRemove...)
	s.mu.Unlock()
	for _, id := range gone {
		for _, cb := range cbs {
			cb(id)
		}
	}
}

// OnRemove registers fn to run when an ID leaves the set, e.g. to close
// that peer's pooled connections (http.Transport.CloseIdleConnections).
func (s *MemPeerSet) OnRemove(fn func(spiffeid.ID)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRemove = append(s.onRemove, fn)
}
