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

// PeerStep is one step of the two-sided peering handshake: this
// registry's acceptance (Here: its admin added or accepted the peer, or
// its auto-accept policy did) and the peer's (There: it announced itself,
// or told us it accepted). Acceptances accumulate; the peer becomes
// active once both are in.
type PeerStep struct {
	Record PeerRecord
	Here   bool
	There  bool
	By     string
	Reason string
	Now    time.Time
}

// PeerHandshake is a peer's licence with the handshake's acceptances.
type PeerHandshake struct {
	PeerLicence
	AcceptedHere  bool
	AcceptedThere bool
}

func handshakeFromRow(r registrydb.PeerRegistry) PeerHandshake {
	return PeerHandshake{PeerLicence: licenceFromRow(r), AcceptedHere: r.AcceptedHere, AcceptedThere: r.AcceptedThere}
}

// Handshake applies s in one transaction with emit, called when the
// peer's status changed (a new pending peer, or pending to active), and a
// notification to every process of this registry when it became active.
// A peer already active is returned unchanged (before == after); a
// suspended or revoked one is FailedPrecondition: an operator's decision
// is never undone by a handshake.
func (p *Peers) Handshake(ctx context.Context, s PeerStep, emit func(ctx context.Context, tx pgx.Tx, before, after PeerLicence) error) (before, after PeerHandshake, err error) {
	err = db.NewStore(p.pool, "registry").Tx(ctx, func(tx pgx.Tx) error {
		before, after = PeerHandshake{}, PeerHandshake{}
		cur, err := p.q.PeerHandshakeGet(ctx, tx, s.Record.SpiffeID)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			before = handshakeFromRow(cur)
		}
		switch before.Status {
		case PeerActive:
			after = before
			return nil
		case PeerSuspended, PeerRevoked:
			return apperr.New(apperr.FailedPrecondition, "peer %s is %s by an operator; a handshake does not change that", s.Record.SpiffeID, before.Status)
		}
		r := s.Record
		row, err := p.q.PeerHandshakeUpsert(ctx, tx, registrydb.PeerHandshakeUpsertParams{
			SpiffeID: r.SpiffeID, TrustDomain: r.TrustDomain, BaseUrl: r.BaseURL, BundleEndpointUrl: r.BundleEndpointURL,
			BundleEndpointProfile: r.BundleEndpointProfile, BundleEndpointID: r.BundleEndpointID, Bundle: r.Bundle, Now: s.Now,
			AcceptedHere: s.Here, AcceptedThere: s.There, ChangedBy: s.By, ChangeReason: s.Reason,
		})
		if err != nil {
			return err
		}
		after = handshakeFromRow(row)
		if after.Status == before.Status {
			return nil
		}
		if emit != nil {
			if err := emit(ctx, tx, before.PeerLicence, after.PeerLicence); err != nil {
				return err
			}
		}
		if after.Status == PeerActive {
			return p.q.PeerRegistryNotify(ctx, tx, r.SpiffeID)
		}
		return nil
	})
	return before, after, err
}

// HandshakeState returns a peer's licence with its acceptances (NotFound
// when unknown).
func (p *Peers) HandshakeState(ctx context.Context, spiffeID string) (PeerHandshake, error) {
	r, err := p.q.PeerRegistryGet(ctx, p.pool, spiffeID)
	if errors.Is(err, pgx.ErrNoRows) {
		return PeerHandshake{}, apperr.New(apperr.NotFound, "peer %s is not known", spiffeID)
	}
	if err != nil {
		return PeerHandshake{}, err
	}
	return handshakeFromRow(r), nil
}
