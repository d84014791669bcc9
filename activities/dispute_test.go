package activities_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/dispute"
)

type disputeLedger struct{ err error }

func (l disputeLedger) CloseDisputeResponse(context.Context, uuid.UUID) (dispute.State, error) {
	return dispute.State{}, l.err
}
func (l disputeLedger) LapseDispute(context.Context, uuid.UUID) (dispute.State, error) {
	return dispute.State{}, l.err
}
func (l disputeLedger) SettleDispute(context.Context, uuid.UUID) (dispute.Settlement, error) {
	return dispute.Settlement{}, l.err
}

// A dispute step the ledger refuses for good (bad input, unknown dispute,
// not ruled) is final; a step not yet due by the database's clock, an
// audit that blocks compensation (Unavailable) and infrastructure
// failures are retried; a malformed ID is final before the ledger.
func TestDisputeActivitiesClassifyLedgerErrors(t *testing.T) {
	cases := slices.Concat([]errorCase{{name: "ok"}, {name: "network", portErr: errNetwork, nonRetryable: retryable}},
		codes(retryable, apperr.Unavailable, apperr.Internal, apperr.Conflict),
		codes(activities.ErrTypeDisputeInvalid, apperr.Invalid, apperr.NotFound, apperr.FailedPrecondition))
	id := uuid.NewString()
	for _, c := range cases {
		a := &activities.Disputes{Ledger: disputeLedger{err: c.portErr}}
		requireClass(t, c, execute(t, a, a.CloseDisputeResponse, id))
		requireClass(t, c, execute(t, a, a.LapseDispute, id))
		requireClass(t, c, execute(t, a, a.SettleDispute, id))
	}
	a := &activities.Disputes{Ledger: disputeLedger{}}
	bad := errorCase{name: "malformed id", portErr: apperr.New(apperr.Invalid, "x"), nonRetryable: activities.ErrTypeDisputeInvalid}
	requireClass(t, bad, execute(t, a, a.SettleDispute, "nope"))
}
