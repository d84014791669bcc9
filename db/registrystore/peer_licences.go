package registrystore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore/internal/registrydb"
)

// Peer licence states (peer_registries.status). Only PeerActive is
// admitted; PeerRemoved is the older, silent removal.
const (
	PeerPending   = "pending"
	PeerActive    = "active"
	PeerSuspended = "suspended"
	PeerRevoked   = "revoked"
	PeerRemoved   = "removed"
)

// PeerLicence is a peer row with its licence: its state and the last
// decision on it.
type PeerLicence struct {
	PeerRecord
	Status       string
	ChangedBy    string
	ChangeReason string
	Seq          int64 // changes so far; keys the change's event
	UpdatedAt    time.Time
}

func licenceFromRow(r registrydb.PeerRegistry) PeerLicence {
	return PeerLicence{
		PeerRecord: PeerRecord{
			SpiffeID: r.SpiffeID, TrustDomain: r.TrustDomain, BaseURL: r.BaseUrl,
			BundleEndpointURL: r.BundleEndpointUrl, BundleEndpointProfile: r.BundleEndpointProfile,
			BundleEndpointID: r.BundleEndpointID, Bundle: r.Bundle,
		},
		Status: r.Status, ChangedBy: r.ChangedBy, ChangeReason: r.ChangeReason, Seq: r.StatusSeq, UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// PeerChange is one licence decision.
type PeerChange struct {
	SpiffeID string
	From     []string // states the peer may be in
	To       string
	By       string
	Reason   string
	Now      time.Time
}

// SetStatus applies c in one transaction with emit (which writes the
// change's event to the outbox) and a notification to every process of
// this registry (LISTEN theprotocol_peers), so the change, its event and
// its propagation commit together. It returns the licence before and
// after. NotFound for an unknown peer; FailedPrecondition when the peer is
// in a state c does not start from.
func (p *Peers) SetStatus(ctx context.Context, c PeerChange, emit func(ctx context.Context, tx pgx.Tx, before, after PeerLicence) error) (before, after PeerLicence, err error) {
	err = db.NewStore(p.pool, "registry").Tx(ctx, func(tx pgx.Tx) error {
		cur, err := p.q.PeerRegistryGet(ctx, tx, c.SpiffeID)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "peer %s is not known", c.SpiffeID)
		}
		if err != nil {
			return err
		}
		before = licenceFromRow(cur)
		row, err := p.q.PeerRegistrySetStatus(ctx, tx, registrydb.PeerRegistrySetStatusParams{
			Status: c.To, ChangedBy: c.By, ChangeReason: c.Reason, Now: c.Now, SpiffeID: c.SpiffeID, FromStatuses: c.From,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.FailedPrecondition, "peer %s is %s; it cannot become %s", c.SpiffeID, before.Status, c.To)
		}
		if err != nil {
			return err
		}
		after = licenceFromRow(row)
		if emit != nil {
			if err := emit(ctx, tx, before, after); err != nil {
				return err
			}
		}
		return p.q.PeerRegistryNotify(ctx, tx, c.SpiffeID)
	})
	return before, after, err
}

// Get returns one peer's licence (NotFound when unknown).
func (p *Peers) Get(ctx context.Context, spiffeID string) (PeerLicence, error) {
	r, err := p.q.PeerRegistryGet(ctx, p.pool, spiffeID)
	if errors.Is(err, pgx.ErrNoRows) {
		return PeerLicence{}, apperr.New(apperr.NotFound, "peer %s is not known", spiffeID)
	}
	if err != nil {
		return PeerLicence{}, err
	}
	return licenceFromRow(r), nil
}

// ListAll returns up to maxRows peers in every state after afterSpiffeID,
// in SPIFFE ID order.
func (p *Peers) ListAll(ctx context.Context, afterSpiffeID string, maxRows int) ([]PeerLicence, error) {
	rows, err := p.q.PeerRegistryListAll(ctx, p.pool, registrydb.PeerRegistryListAllParams{AfterSpiffeID: afterSpiffeID, MaxRows: int32(maxRows)})
	if err != nil {
		return nil, err
	}
	out := make([]PeerLicence, len(rows))
	for i, r := range rows {
		out[i] = licenceFromRow(r)
	}
	return out, nil
}
