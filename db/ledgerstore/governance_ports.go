package ledgerstore

import (
	"context"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/governance"
)

// Status is the proposal as the tally workflow sees it.
func (p Proposal) Status() governance.Status {
	return governance.Status{ProposalID: p.ID.String(), State: p.State, ClosesAt: p.ClosesAt, EnactAfter: p.EnactAfter, HasChange: p.Change != nil}
}

// The governance activities' port (activities.GovernanceLedger) speaks
// governance.Status and string IDs; these adapt the store to it.

// GovernanceStatus returns proposal id's status. Errors: Invalid (not a
// UUID), NotFound.
func (s *Store) GovernanceStatus(ctx context.Context, id string) (governance.Status, error) {
	return s.statusOf(ctx, id, s.Proposal)
}

// GovernanceTally tallies proposal id once (TallyProposal).
func (s *Store) GovernanceTally(ctx context.Context, id string) (governance.Status, error) {
	return s.statusOf(ctx, id, s.TallyProposal)
}

// GovernanceEnact enacts proposal id once (EnactProposal).
func (s *Store) GovernanceEnact(ctx context.Context, id string) (governance.Status, error) {
	return s.statusOf(ctx, id, s.EnactProposal)
}

// GovernanceDue is ProposalsDue with string IDs, followed by the
// federation proposals this registry originated that are due
// (FederationDue), up to limit in all.
func (s *Store) GovernanceDue(ctx context.Context, limit int) ([]string, error) {
	ids, err := s.ProposalsDue(ctx, limit)
	if err != nil {
		return nil, err
	}
	if len(ids) < limit {
		fed, err := s.FederationDue(ctx, limit-len(ids))
		if err != nil {
			return nil, err
		}
		ids = append(ids, fed...)
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out, nil
}

func (s *Store) statusOf(ctx context.Context, id string, f func(context.Context, uuid.UUID) (Proposal, error)) (governance.Status, error) {
	u, err := parseProposalID(id)
	if err != nil {
		return governance.Status{}, err
	}
	p, err := f(ctx, u)
	if err != nil {
		return governance.Status{}, err
	}
	return p.Status(), nil
}
