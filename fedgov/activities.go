package fedgov

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/governance"
)

// The workflow's port (activities.FederationLedger) speaks string IDs and
// statuses; these adapt the service to it.

var _ activities.FederationLedger = (*Service)(nil)

func parseID(id string) (uuid.UUID, error) {
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return uuid.Nil, apperr.New(apperr.Invalid, "proposal id %q is not a canonical UUID", clip(id))
	}
	return u, nil
}

// FederationStatus implements activities.FederationLedger.
func (s *Service) FederationStatus(ctx context.Context, id string) (activities.FederationStatus, error) {
	u, err := parseID(id)
	if err != nil {
		return activities.FederationStatus{}, err
	}
	p, err := s.Ledger.Proposal(ctx, u)
	if err != nil {
		return activities.FederationStatus{}, err
	}
	f, err := s.Ledger.FederationOf(ctx, u)
	if err != nil {
		return activities.FederationStatus{}, err
	}
	if f.Role != "origin" {
		return activities.FederationStatus{}, apperr.New(apperr.Invalid, "federation proposal %s is tallied by its origin %s", id, f.OriginRegistry)
	}
	out := activities.FederationStatus{Status: p.Status(), CollectUntil: f.CollectUntil}
	for _, peer := range f.Peers {
		out.Peers = append(out.Peers, peer.Registry)
		if peer.PublicKey != nil {
			out.Announced = append(out.Announced, peer.Registry)
		}
	}
	for _, t := range f.Tallies {
		if t.Tally.Registry != s.Self {
			out.Collected = append(out.Collected, t.Tally.Registry)
		}
	}
	slices.Sort(out.Peers)
	slices.Sort(out.Collected)
	return out, nil
}

// AnnouncePeer implements activities.FederationLedger.
func (s *Service) AnnouncePeer(ctx context.Context, id, peer string) error {
	u, err := parseID(id)
	if err != nil {
		return err
	}
	return s.Announce(ctx, u, peer)
}

// CollectPeer implements activities.FederationLedger.
func (s *Service) CollectPeer(ctx context.Context, id, peer string) error {
	u, err := parseID(id)
	if err != nil {
		return err
	}
	return s.Collect(ctx, u, peer)
}

// TallyFederationProposal implements activities.FederationLedger.
func (s *Service) TallyFederationProposal(ctx context.Context, id string) (governance.Status, error) {
	u, err := parseID(id)
	if err != nil {
		return governance.Status{}, err
	}
	p, err := s.Ledger.TallyFederation(ctx, u, s.Self, s.Key)
	if err != nil {
		return governance.Status{}, err
	}
	return p.Status(), nil
}

// EnactFederationProposal implements activities.FederationLedger.
func (s *Service) EnactFederationProposal(ctx context.Context, id string) (governance.Status, error) {
	u, err := parseID(id)
	if err != nil {
		return governance.Status{}, err
	}
	p, err := s.Ledger.EnactProposal(ctx, u)
	if err != nil {
		return governance.Status{}, err
	}
	return p.Status(), nil
}
