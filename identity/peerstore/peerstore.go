// Package peerstore keeps a registry's peer_registries rows and the identity
// fabric's in-memory view of them in step: the live PeerSet the mTLS
// authorizer consults per handshake (identity.AuthorizePeers) and the pinned
// trust bundles of peer trust domains (identity.Bundles).
//
// Writes go to Postgres first and then to memory, so a crash between the two
// leaves the database authoritative; Load rebuilds memory from it at start.
// Removal is effective for the next handshake as soon as Remove returns.
package peerstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/identity"
)

// Limits.
const (
	MaxPeers = 10000 // Load refuses to hold more active peers than this
	pageSize = 500
)

// Peer is one peer registry.
type Peer struct {
	ID      spiffeid.ID // spiffe://<td>/registry/<id>
	BaseURL string      // https:// API base of the peer
	// Bundle endpoint of the peer's trust domain (see identity.Peer). For a
	// peer in our own trust domain these are ignored.
	BundleEndpointURL string
	Profile           string
	EndpointID        spiffeid.ID
	// InitialBundle authenticates the first https_spiffe fetch (out of band).
	InitialBundle *spiffebundle.Bundle
}

// Store is the peer registry store of one registry node. Safe for
// concurrent use.
type Store struct {
	db      *registrystore.Peers
	set     *identity.MemPeerSet
	bundles *identity.Bundles
	ownTD   spiffeid.TrustDomain
}

// New returns a store on pool (a registry-role database) updating bundles
// (the node's bundle source) and an in-memory PeerSet.
func New(pool *pgxpool.Pool, ownTD spiffeid.TrustDomain, bundles *identity.Bundles) *Store {
	return &Store{db: registrystore.NewPeers(pool), set: identity.NewMemPeerSet(), bundles: bundles, ownTD: ownTD}
}

// PeerSet is the live set of active peer IDs, for identity.AuthorizePeers;
// register MemPeerSet.OnRemove callbacks on it to close pooled connections.
func (s *Store) PeerSet() *identity.MemPeerSet { return s.set }

// Load reads every active peer and replaces the in-memory set and pinned
// bundles with them. Call at start and after out-of-band changes.
func (s *Store) Load(ctx context.Context) error {
	var ids []spiffeid.ID
	tds := map[spiffeid.TrustDomain]bool{}
	after := ""
	for {
		rows, err := s.db.ListActive(ctx, after, pageSize)
		if err != nil {
			return fmt.Errorf("load peers: %w", err)
		}
		for _, r := range rows {
			id, err := spiffeid.FromString(r.SpiffeID)
			if err != nil {
				return fmt.Errorf("load peers: row %q: %w", r.SpiffeID, err)
			}
			ids = append(ids, id)
			if id.TrustDomain() != s.ownTD {
				p, bundle, err := peerFromRow(r)
				if err != nil {
					return err
				}
				if err := s.bundles.PinPeer(p, bundle); err != nil {
					return err
				}
				tds[p.TrustDomain] = true
			}
		}
		if len(ids) > MaxPeers {
			return fmt.Errorf("load peers: more than %d active peers", MaxPeers)
		}
		if len(rows) < pageSize {
			break
		}
		after = rows[len(rows)-1].SpiffeID
	}
	s.set.Replace(ids)
	for _, st := range s.bundles.Peers() {
		if !tds[st.TrustDomain] {
			s.bundles.RemovePeer(st.TrustDomain) // no active peer left there
		}
	}
	return nil
}

func peerFromRow(r registrystore.PeerRecord) (identity.Peer, *spiffebundle.Bundle, error) {
	td, err := spiffeid.TrustDomainFromString(r.TrustDomain)
	if err != nil {
		return identity.Peer{}, nil, fmt.Errorf("peer %s: %w", r.SpiffeID, err)
	}
	p := identity.Peer{TrustDomain: td, EndpointURL: r.BundleEndpointURL, Profile: r.BundleEndpointProfile}
	if r.BundleEndpointID != nil {
		if p.EndpointID, err = spiffeid.FromString(*r.BundleEndpointID); err != nil {
			return identity.Peer{}, nil, fmt.Errorf("peer %s: endpoint id: %w", r.SpiffeID, err)
		}
	}
	bundle, err := spiffebundle.Parse(td, r.Bundle)
	if err != nil {
		return identity.Peer{}, nil, fmt.Errorf("peer %s: stored bundle: %w", r.SpiffeID, err)
	}
	return p, bundle, nil
}

// Add stores p as an active peer. For a peer in another trust domain it
// first fetches and pins that trust domain's bundle (identity.Bundles.AddPeer);
// a failed fetch adds nothing (apperr.Unavailable). Invalid input is
// apperr.Invalid; a peer an operator suspended or revoked stays so and is
// apperr.FailedPrecondition.
func (s *Store) Add(ctx context.Context, p Peer, now time.Time) error {
	if p.ID.IsZero() || p.ID.Path() == "" {
		return apperr.New(apperr.Invalid, "peer SPIFFE ID is required")
	}
	td := p.ID.TrustDomain()
	var (
		bundleJSON []byte
		endpointID *string
		err        error
	)
	if td == s.ownTD {
		// Same frame: verified with our own bundle; nothing to fetch. Keep the
		// row shape uniform with a marker endpoint.
		own, berr := s.bundles.GetX509BundleForTrustDomain(td)
		if berr != nil {
			return apperr.Wrap(berr, apperr.Unavailable, "own trust bundle unavailable")
		}
		if bundleJSON, err = spiffebundle.FromX509Bundle(own).Marshal(); err != nil {
			return err
		}
		if p.BundleEndpointURL == "" {
			p.BundleEndpointURL, p.Profile = p.BaseURL, identity.ProfileHTTPSWeb
		}
	} else {
		ip := identity.Peer{TrustDomain: td, EndpointURL: p.BundleEndpointURL, Profile: p.Profile, EndpointID: p.EndpointID, Bundle: p.InitialBundle}
		if err := s.bundles.AddPeer(ctx, ip); err != nil {
			return apperr.Wrap(err, apperr.Unavailable, "fetch trust bundle of %s", td.Name())
		}
		pinned, _ := s.bundles.Pinned(td)
		if bundleJSON, err = pinned.Marshal(); err != nil {
			return err
		}
	}
	if !p.EndpointID.IsZero() {
		e := p.EndpointID.String()
		endpointID = &e
	}
	status, err := s.db.UpsertStatus(ctx, registrystore.PeerRecord{
		SpiffeID: p.ID.String(), TrustDomain: td.Name(), BaseURL: p.BaseURL,
		BundleEndpointURL: p.BundleEndpointURL, BundleEndpointProfile: p.Profile, BundleEndpointID: endpointID,
		Bundle: bundleJSON,
	}, now)
	if err != nil {
		return fmt.Errorf("add peer: %w", err)
	}
	if status != registrystore.PeerActive {
		// An operator's suspension or revocation outlives any re-add.
		return apperr.New(apperr.FailedPrecondition, "peer %s is %s by an operator; it is not re-added", p.ID, status)
	}
	s.set.Add(p.ID)
	return nil
}

// Remove marks the peer removed and refuses its next handshake; when it was
// the last active peer of a foreign trust domain, that trust domain's bundle
// is dropped too. An unknown or already removed peer is apperr.NotFound.
func (s *Store) Remove(ctx context.Context, id spiffeid.ID, now time.Time) error {
	removed, err := s.db.Remove(ctx, id.String(), now)
	if err != nil {
		return fmt.Errorf("remove peer: %w", err)
	}
	// Refuse in memory even if the row was already gone.
	s.set.Remove(id)
	if !removed {
		return apperr.New(apperr.NotFound, "peer not found")
	}
	if td := id.TrustDomain(); td != s.ownTD {
		left, err := s.db.CountActiveInTrustDomain(ctx, td.Name())
		if err != nil {
			return fmt.Errorf("remove peer: %w", err)
		}
		if left == 0 {
			s.bundles.RemovePeer(td)
		}
	}
	return nil
}

// Refresh re-fetches the bundles of all peer trust domains and stores the
// new ones. Fetch failures keep the pinned bundles and are returned joined.
func (s *Store) Refresh(ctx context.Context, now time.Time) error {
	fetchErr := s.bundles.Refresh(ctx)
	var errs []error
	for _, st := range s.bundles.Peers() {
		b, ok := s.bundles.Pinned(st.TrustDomain)
		if !ok {
			continue
		}
		raw, err := b.Marshal()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.db.UpdateBundle(ctx, st.TrustDomain.Name(), raw, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(fetchErr, errors.Join(errs...))
}
