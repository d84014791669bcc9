package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/governance"
)

// FederationStatus is a federation proposal as its origin's tally
// workflow sees it: its status, the peers expected, and how far the
// announcement and the collection got.
type FederationStatus struct {
	governance.Status
	CollectUntil time.Time // unavailable peers are retried until then
	Peers        []string  // expected, sorted
	Announced    []string  // answered the announcement (key pinned)
	Collected    []string  // signed tally kept
}

// FederationLedger is the federation tier as its workflow drives it (the
// node's fedgov.Service implements it). Every step is idempotent: a
// repeated announcement or collection changes nothing, and the tally and
// the enactment happen once per proposal.
type FederationLedger interface {
	FederationStatus(ctx context.Context, id string) (FederationStatus, error)
	AnnouncePeer(ctx context.Context, id, peer string) error
	CollectPeer(ctx context.Context, id, peer string) error
	TallyFederationProposal(ctx context.Context, id string) (governance.Status, error)
	EnactFederationProposal(ctx context.Context, id string) (governance.Status, error)
}

// GovernanceFederation are the federation tally workflow's activities.
type GovernanceFederation struct {
	Fed FederationLedger
}

// FederationProposalStatus reads a federation proposal's status at its
// origin.
func (g *GovernanceFederation) FederationProposalStatus(ctx context.Context, id string) (FederationStatus, error) {
	s, err := g.Fed.FederationStatus(ctx, id)
	return s, governanceErr(err)
}

// AnnounceToPeer announces the proposal to one peer and pins its key. An
// unreachable peer is retried (until the workflow's deadline); a refusal
// is final.
func (g *GovernanceFederation) AnnounceToPeer(ctx context.Context, id, peer string) error {
	return peerErr(g.Fed.AnnouncePeer(ctx, id, peer))
}

// CollectFromPeer fetches, verifies and keeps one peer's signed local
// tally. An unreachable peer, or one whose window has not ended on its
// clock, is asked again; a refusal or a tally that does not verify is
// final (the peer is then tallied as missing).
func (g *GovernanceFederation) CollectFromPeer(ctx context.Context, id, peer string) error {
	return peerErr(g.Fed.CollectPeer(ctx, id, peer))
}

// TallyFederation aggregates the tallies kept, once, recording the
// missing peers. A FailedPrecondition (the window has not ended on the
// database's clock) is retried.
func (g *GovernanceFederation) TallyFederation(ctx context.Context, id string) (governance.Status, error) {
	s, err := g.Fed.TallyFederationProposal(ctx, id)
	if apperr.Is(err, apperr.FailedPrecondition) {
		return s, err
	}
	return s, governanceErr(err)
}

// EnactFederation enacts a passed federation proposal's change after its
// veto window; a vetoed one is final, not an error.
func (g *GovernanceFederation) EnactFederation(ctx context.Context, id string) (governance.Status, error) {
	s, err := g.Fed.EnactFederationProposal(ctx, id)
	if apperr.Is(err, apperr.FailedPrecondition) {
		cur, serr := g.Fed.FederationStatus(ctx, id)
		if serr == nil && cur.Final() {
			return cur.Status, nil
		}
		return s, err
	}
	return s, governanceErr(err)
}

// peerErr: an unreachable peer or one not ready yet is retried; anything
// else the peer or the ledger refused is final.
func peerErr(err error) error {
	if err == nil {
		return nil
	}
	switch apperr.CodeOf(err) {
	case apperr.Unavailable, apperr.FailedPrecondition:
		return err
	case apperr.Invalid, apperr.NotFound, apperr.Forbidden, apperr.Conflict:
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeGovernanceInvalid, err)
	}
	return err
}
