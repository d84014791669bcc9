package activities

import (
	"context"

	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/governance"
)

// ErrTypeGovernanceInvalid marks a governance step that can never succeed
// (malformed or unknown proposal): not retryable.
const ErrTypeGovernanceInvalid = "GovernanceInvalid"

// GovernanceLedger is the TEG side of governance (ledgerstore.Store
// implements it). Tally and enactment happen once per proposal: a repeat
// returns the recorded status.
type GovernanceLedger interface {
	GovernanceStatus(ctx context.Context, id string) (governance.Status, error)
	GovernanceTally(ctx context.Context, id string) (governance.Status, error)
	GovernanceEnact(ctx context.Context, id string) (governance.Status, error)
	GovernanceDue(ctx context.Context, limit int) ([]string, error)
}

// TallyStarter starts (or finds running) a proposal's tally workflow. The
// node's proposals service implements it.
type TallyStarter interface {
	StartTally(ctx context.Context, proposalID string) error
}

// Governance are the governance workflows' activities.
type Governance struct {
	Ledger  GovernanceLedger
	Starter TallyStarter
}

// ProposalStatus reads a proposal's status.
func (g *Governance) ProposalStatus(ctx context.Context, id string) (governance.Status, error) {
	s, err := g.Ledger.GovernanceStatus(ctx, id)
	return s, governanceErr(err)
}

// TallyProposal tallies a proposal whose window has ended, once. A
// FailedPrecondition (the window has not ended on the database's clock)
// is retried.
func (g *Governance) TallyProposal(ctx context.Context, id string) (governance.Status, error) {
	s, err := g.Ledger.GovernanceTally(ctx, id)
	if apperr.Is(err, apperr.FailedPrecondition) {
		return s, err
	}
	return s, governanceErr(err)
}

// EnactProposal enacts a passed proposal's change once its veto window
// has ended. A proposal vetoed (or otherwise final) meanwhile is not an
// error: its status says so. Otherwise a FailedPrecondition (still in the
// veto window on the database's clock) is retried.
func (g *Governance) EnactProposal(ctx context.Context, id string) (governance.Status, error) {
	s, err := g.Ledger.GovernanceEnact(ctx, id)
	if apperr.Is(err, apperr.FailedPrecondition) {
		cur, serr := g.Ledger.GovernanceStatus(ctx, id)
		if serr == nil && cur.Final() {
			return cur, nil
		}
		return s, err
	}
	return s, governanceErr(err)
}

// DueProposals lists up to limit proposals whose tally workflow should be
// running (past their window untallied, or past their veto window
// unenacted).
func (g *Governance) DueProposals(ctx context.Context, limit int) ([]string, error) {
	ids, err := g.Ledger.GovernanceDue(ctx, limit)
	return ids, governanceErr(err)
}

// StartTallies starts the tally workflow of each proposal unless it is
// running, and returns how many it asked for. Starting one that finished
// is harmless: its steps are idempotent on the ledger.
func (g *Governance) StartTallies(ctx context.Context, ids []string) (int, error) {
	for i, id := range ids {
		if err := g.Starter.StartTally(ctx, id); err != nil {
			return i, err
		}
	}
	return len(ids), nil
}

func governanceErr(err error) error {
	if err == nil {
		return nil
	}
	switch apperr.CodeOf(err) {
	case apperr.Invalid, apperr.NotFound, apperr.FailedPrecondition:
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeGovernanceInvalid, err)
	}
	return err
}
