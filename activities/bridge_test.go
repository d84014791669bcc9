package activities_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
)

type errBridgeLedger struct{ err error }

func (l errBridgeLedger) BridgeRecord(context.Context, uuid.UUID) (activities.BridgeRecord, error) {
	return activities.BridgeRecord{}, l.err
}
func (l errBridgeLedger) BridgeComplete(context.Context, uuid.UUID, int64) error { return l.err }
func (l errBridgeLedger) BridgeRefund(context.Context, uuid.UUID, string) error  { return l.err }

type noBridgePeer struct{}

func (noBridgePeer) Deliver(context.Context, activities.BridgeRecord) activities.BridgeAnswer {
	return activities.BridgeAnswer{Outcome: activities.BridgeApplied}
}
func (noBridgePeer) Ask(context.Context, activities.BridgeRecord) activities.BridgeAnswer {
	return activities.BridgeAnswer{Outcome: activities.BridgeApplied}
}

// A bridge operation the ledger does not know, or a completion the ledger
// refuses (refunded already, or the reverse), is final; anything else is
// retried.
func TestBridgeActivitiesClassifyErrors(t *testing.T) {
	cases := append(codes(activities.ErrTypeBridgeNotFound, apperr.NotFound),
		errorCase{name: "conflict", portErr: apperr.New(apperr.Conflict, "refunded"), nonRetryable: activities.ErrTypeXferRefused},
		errorCase{name: "network", portErr: errNetwork, nonRetryable: retryable},
		errorCase{name: "unavailable", portErr: apperr.New(apperr.Unavailable, "db down"), nonRetryable: retryable},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &activities.Bridge{Ledger: errBridgeLedger{c.portErr}, Peers: noBridgePeer{}}
			requireClass(t, c, execute(t, a, a.BridgeComplete, activities.BridgeCompleteInput{ID: uuid.New()}))
			requireClass(t, c, execute(t, a, a.BridgeRefund, activities.BridgeRefundInput{ID: uuid.New()}))
		})
	}
	a := &activities.Bridge{Ledger: errBridgeLedger{apperr.New(apperr.NotFound, "no such")}, Peers: noBridgePeer{}}
	requireClass(t, errorCase{name: "deliver", portErr: apperr.New(apperr.NotFound, "no such"), nonRetryable: activities.ErrTypeBridgeNotFound}, execute(t, a, a.BridgeDeliver, uuid.New()))
}
