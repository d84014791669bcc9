package activities

import (
	"context"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/dispute"
)

// ErrTypeDisputeInvalid marks a dispute step that can never succeed (a
// malformed or unknown dispute ID, a settlement of a dispute that was not
// ruled): not retryable.
const ErrTypeDisputeInvalid = "DisputeInvalid"

// DisputeLedger is the TEG side of a dispute's deadlines and ruling
// (ledgerstore.Store implements it). Every method is idempotent per
// dispute: it reads the dispute's row under lock and acts only if the
// row says the step is still to be done, so a retried or duplicated
// activity never applies a step twice.
type DisputeLedger interface {
	CloseDisputeResponse(ctx context.Context, id uuid.UUID) (dispute.State, error)
	LapseDispute(ctx context.Context, id uuid.UUID) (dispute.State, error)
	SettleDispute(ctx context.Context, id uuid.UUID) (dispute.Settlement, error)
}

// Disputes are the Dispute workflow's activities.
type Disputes struct {
	Ledger DisputeLedger
}

// CloseDisputeResponse applies the response deadline (the respondent is
// in default unless they answered) and returns the dispute's state.
func (a *Disputes) CloseDisputeResponse(ctx context.Context, disputeID string) (dispute.State, error) {
	id, err := disputeID2UUID(disputeID)
	if err != nil {
		return dispute.State{}, err
	}
	st, err := a.Ledger.CloseDisputeResponse(ctx, id)
	return st, disputeErr(err)
}

// LapseDispute applies the ruling deadline (the dispute lapses unless it
// was ruled) and returns the dispute's state.
func (a *Disputes) LapseDispute(ctx context.Context, disputeID string) (dispute.State, error) {
	id, err := disputeID2UUID(disputeID)
	if err != nil {
		return dispute.State{}, err
	}
	st, err := a.Ledger.LapseDispute(ctx, id)
	return st, disputeErr(err)
}

// SettleDispute applies the ruling's consequences once: compensation
// minted, or the fee charged. It retries while the supply audit blocks the
// mint.
func (a *Disputes) SettleDispute(ctx context.Context, disputeID string) (dispute.Settlement, error) {
	id, err := disputeID2UUID(disputeID)
	if err != nil {
		return dispute.Settlement{}, err
	}
	s, err := a.Ledger.SettleDispute(ctx, id)
	return s, disputeErr(err)
}

func disputeID2UUID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, temporal.NewNonRetryableApplicationError("malformed dispute id", ErrTypeDisputeInvalid, err)
	}
	return id, nil
}

// disputeErr: refusals that no retry changes are final; everything else
// (Unavailable: a deadline not due yet by this clock, an audit that
// blocks compensation; infrastructure failures) is retried.
func disputeErr(err error) error {
	if err == nil {
		return nil
	}
	switch apperr.CodeOf(err) {
	case apperr.Invalid, apperr.NotFound, apperr.FailedPrecondition:
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeDisputeInvalid, err)
	}
	return err
}
