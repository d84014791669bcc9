package registrystore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore/internal/registrydb"
)

// PeerRecord is one peer_registries row: a peer registry this registry
// admits over mTLS, with the trust bundle pinned for its trust domain.
type PeerRecord struct {
	SpiffeID              string
	TrustDomain           string
	BaseURL               string
	BundleEndpointURL     string
	BundleEndpointProfile string
	BundleEndpointID      *string // nil when the peer named none
	Bundle                []byte  // SPIFFE bundle JSON
}

// Peers is the peer_registries table of a registry database. It stands
// apart from Store because the identity fabric opens it before the
// registry API (and its outbox) exists, and peers emit no events. Each
// method is one statement (with, for changes, its notification).
type Peers struct {
	pool *pgxpool.Pool
	q    *registrydb.Queries
}

// NewPeers returns the peer table of the registry database behind pool.
func NewPeers(pool *pgxpool.Pool) *Peers {
	return &Peers{pool: pool, q: registrydb.New()}
}

// ListActive returns up to maxRows active peers whose SPIFFE ID sorts after
// afterSpiffeID, in SPIFFE ID order (pass the last one to read the next
// page).
func (p *Peers) ListActive(ctx context.Context, afterSpiffeID string, maxRows int) ([]PeerRecord, error) {
	rows, err := p.q.PeerRegistryListActive(ctx, p.pool, registrydb.PeerRegistryListActiveParams{AfterSpiffeID: afterSpiffeID, MaxRows: int32(maxRows)})
	if err != nil {
		return nil, err
	}
	out := make([]PeerRecord, len(rows))
	for i, r := range rows {
		out[i] = PeerRecord{
			SpiffeID: r.SpiffeID, TrustDomain: r.TrustDomain, BaseURL: r.BaseUrl,
			BundleEndpointURL: r.BundleEndpointUrl, BundleEndpointProfile: r.BundleEndpointProfile,
			BundleEndpointID: r.BundleEndpointID, Bundle: r.Bundle,
		}
	}
	return out, nil
}

// Upsert adds r as an active peer, or re-activates and updates it. A
// peer an operator suspended or revoked keeps that state (UpsertStatus
// says which).
func (p *Peers) Upsert(ctx context.Context, r PeerRecord, now time.Time) error {
	_, err := p.UpsertStatus(ctx, r, now)
	return err
}

// UpsertStatus is Upsert returning the peer's licence state afterwards.
// Like every change to the peer set it notifies the registry's other
// processes (LISTEN theprotocol_peers) in the same transaction, so a peer
// added on one process is admitted by all of them from the next call.
func (p *Peers) UpsertStatus(ctx context.Context, r PeerRecord, now time.Time) (string, error) {
	var status string
	err := db.NewStore(p.pool, "registry").Tx(ctx, func(tx pgx.Tx) error {
		row, err := p.q.PeerRegistryUpsert(ctx, tx, registrydb.PeerRegistryUpsertParams{
			SpiffeID: r.SpiffeID, TrustDomain: r.TrustDomain, BaseUrl: r.BaseURL,
			BundleEndpointUrl: r.BundleEndpointURL, BundleEndpointProfile: r.BundleEndpointProfile, BundleEndpointID: r.BundleEndpointID,
			Bundle: r.Bundle, Now: now,
		})
		if err != nil {
			return err
		}
		status = row.Status
		return p.q.PeerRegistryNotify(ctx, tx, r.SpiffeID)
	})
	return status, err
}

// Remove marks the peer removed (notifying the registry's other
// processes, which refuse it from their next call too); removed is false
// when no active peer had that SPIFFE ID.
func (p *Peers) Remove(ctx context.Context, spiffeID string, now time.Time) (removed bool, err error) {
	err = db.NewStore(p.pool, "registry").Tx(ctx, func(tx pgx.Tx) error {
		n, err := p.q.PeerRegistryRemove(ctx, tx, registrydb.PeerRegistryRemoveParams{SpiffeID: spiffeID, Now: now})
		if err != nil || n == 0 {
			return err
		}
		removed = true
		return p.q.PeerRegistryNotify(ctx, tx, spiffeID)
	})
	return removed, err
}

// CountActiveInTrustDomain counts the active peers of a trust domain.
func (p *Peers) CountActiveInTrustDomain(ctx context.Context, trustDomain string) (int64, error) {
	return p.q.PeerRegistryCountActiveInTrustDomain(ctx, p.pool, trustDomain)
}

// UpdateBundle stores a refreshed bundle for every active peer of the
// trust domain.
func (p *Peers) UpdateBundle(ctx context.Context, trustDomain string, bundle []byte, now time.Time) error {
	_, err := p.q.PeerRegistryBundleUpdate(ctx, p.pool, registrydb.PeerRegistryBundleUpdateParams{TrustDomain: trustDomain, Bundle: bundle, Now: now})
	return err
}
