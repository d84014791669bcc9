package disputes

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/dispute"
	"github.com/theprotocol-dev/theprotocol/events"
)

// memSlasher holds disputes and records slashes with the enforcement
// slash's contract: one slash per case.
type memSlasher struct {
	disputes map[uuid.UUID]ledgerstore.Dispute
	slashes  map[string]string // case → agent
	calls    int
	err      error
}

func (m *memSlasher) GetDispute(_ context.Context, id uuid.UUID) (ledgerstore.Dispute, error) {
	d, ok := m.disputes[id]
	if !ok {
		return d, apperr.New(apperr.NotFound, "no dispute")
	}
	return d, nil
}

func (m *memSlasher) SlashStake(_ context.Context, r ledgerstore.SlashRequest) (ledgerstore.Slash, error) {
	m.calls++
	if m.err != nil {
		return ledgerstore.Slash{}, m.err
	}
	if _, ok := m.slashes[r.CaseID]; ok {
		return ledgerstore.Slash{CaseID: r.CaseID, Replayed: true}, nil
	}
	m.slashes[r.CaseID] = r.AgentDID
	return ledgerstore.Slash{CaseID: r.CaseID, AgentDID: r.AgentDID}, nil
}

func ruledEvent(t *testing.T, registry string, id uuid.UUID) events.Envelope {
	raw, err := json.Marshal(events.DisputeRuledPayload{DisputeID: id.String()})
	require.NoError(t, err)
	return events.Envelope{Type: events.TypeDisputeRuled, Registry: registry, IdempotencyKey: "dispute-" + id.String() + "-ruled", Payload: raw}
}

// The enforcer slashes the respondent of a dispute ruled for its
// complainant, once per dispute however often the event comes; it slashes
// nobody for a ruling for the respondent, an unruled dispute, another
// registry's event or an event naming no dispute of this registry (the
// topic is unauthenticated: the ledger decides, not the envelope).
func TestEnforcerSlashesTheLosingRespondentOnce(t *testing.T) {
	ctx := context.Background()
	respondent := "did:theprotocol:" + uuid.NewString()
	won, lost, open := uuid.New(), uuid.New(), uuid.New()
	m := &memSlasher{slashes: map[string]string{}, disputes: map[uuid.UUID]ledgerstore.Dispute{
		won:  {ID: won, Respondent: respondent, Status: dispute.Ruled, Outcome: dispute.ForComplainant},
		lost: {ID: lost, Respondent: respondent, Status: dispute.Ruled, Outcome: dispute.ForRespondent},
		open: {ID: open, Respondent: respondent, Status: dispute.AwaitingRuling},
	}}
	metrics := NewMetrics(prometheus.NewRegistry())
	e := &Enforcer{Ledger: m, Registry: "alpha-main", Metrics: metrics}
	for range 3 {
		require.NoError(t, e.Handle(ctx, ruledEvent(t, "alpha-main", won)))
	}
	require.Equal(t, map[string]string{CaseID(won): respondent}, m.slashes)
	require.EqualValues(t, 1, testutil.ToFloat64(metrics.Slashed), "counted once")
	for _, env := range []events.Envelope{
		ruledEvent(t, "alpha-main", lost), ruledEvent(t, "alpha-main", open), ruledEvent(t, "alpha-main", uuid.New()),
		ruledEvent(t, "alpha-op1", won), {Type: events.TypeDisputeRuled, Registry: "alpha-main", Payload: json.RawMessage(`{"dispute_id":"x"}`)},
	} {
		require.NoError(t, e.Handle(ctx, env))
	}
	require.Len(t, m.slashes, 1, "no other slash")
	require.Equal(t, 3, m.calls)

	// A failing slash is returned, so the runner retries it.
	m.err = errors.New("connection reset")
	require.Error(t, e.Handle(ctx, ruledEvent(t, "alpha-main", won)))
	// A developer respondent has no stake: nothing to slash.
	dev := uuid.New()
	m.err = nil
	m.disputes[dev] = ledgerstore.Dispute{ID: dev, Respondent: "dev:x", Status: dispute.Ruled, Outcome: dispute.ForComplainant}
	require.NoError(t, e.Handle(ctx, ruledEvent(t, "alpha-main", dev)))
	require.Len(t, m.slashes, 1)
}
