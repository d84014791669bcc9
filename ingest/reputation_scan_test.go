package ingest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/events"
)

// The run's high-water mark: a segment id below one read but not visible
// yet (its batch still committing) stays in view for the commit window,
// read ids above the mark are remembered so none is merged twice, and a
// gap that never fills is given up after the window.
func TestReputationNextScan(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	s := nextScan(ReputationScan{From: 1}, []int64{1, 2, 4}, t0)
	require.Equal(t, int64(3), s.From)
	require.Equal(t, []int64{4}, s.Done)
	require.Equal(t, []int64{3}, s.Gaps)
	require.True(t, s.Legacy)

	// 3 commits: read next time, and the mark passes 4.
	s2 := nextScan(s, []int64{3, 5}, t0.Add(10*time.Second))
	require.Equal(t, int64(6), s2.From)
	require.Empty(t, s2.Done)
	require.Empty(t, s2.Gaps)

	// 3 never commits (rolled back): still in view within the window …
	s3 := nextScan(s, []int64{5}, t0.Add(30*time.Second))
	require.Equal(t, int64(3), s3.From)
	require.Equal(t, []int64{4, 5}, s3.Done)
	require.Equal(t, []time.Time{t0}, s3.GapSeen, "first seen when it was first missed")
	// … given up after it.
	s4 := nextScan(s3, nil, t0.Add(2*time.Minute))
	require.Equal(t, int64(6), s4.From)
	require.Empty(t, s4.Gaps)
}

// What a logged event contributes to the graph, and what it must not.
func TestAppendReputation(t *testing.T) {
	payload := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	tr := func(reg, src string, p map[string]any) *events.Envelope {
		return &events.Envelope{Type: events.TypeTokensTransferred, Registry: reg, Source: src, Payload: payload(p)}
	}
	cases := []struct {
		name string
		env  *events.Envelope
		want []ReputationEvent
	}{
		{"agent to agent", tr("r1", events.SourceTEG, map[string]any{"from": "did:a", "to": "did:b", "amount_units": 7}),
			[]ReputationEvent{{Kind: ReputationTransfer, A: "did:a", B: "did:b", Units: 7}}},
		{"wallet payer", tr("r1", events.SourceTEG, map[string]any{"from": "dev:1", "to": "did:b", "amount_units": 7}), nil},
		{"not from a TEG", tr("r1", events.SourceRegistry, map[string]any{"from": "did:a", "to": "did:b", "amount_units": 7}), nil},
		{"non-positive", tr("r1", events.SourceTEG, map[string]any{"from": "did:a", "to": "did:b", "amount_units": -7}), nil},
		{"cross-registry, source's copy", tr("r1", events.SourceTEG, map[string]any{"from": "did:a", "to": "did:b", "amount_units": 7, "source_registry": "r1", "target_registry": "r2"}),
			[]ReputationEvent{{Kind: ReputationTransfer, A: "did:a", B: "did:b", Units: 7}}},
		{"cross-registry, target's copy", tr("r2", events.SourceTEG, map[string]any{"from": "did:a", "to": "did:b", "amount_units": 7, "source_registry": "r1", "target_registry": "r2"}), nil},
		{"malformed", &events.Envelope{Type: events.TypeTokensTransferred, Source: events.SourceTEG, Payload: json.RawMessage(`[`)}, nil},
		{"slash", &events.Envelope{Type: events.TypeStakeSlashed, Source: events.SourceTEG, Payload: payload(map[string]any{"owner": "did:x"})},
			[]ReputationEvent{{Kind: ReputationSlash, A: "did:x"}}},
		{"dispute", &events.Envelope{Type: typeDisputeRuled, Source: events.SourceTEG, Payload: payload(map[string]any{"winner": "did:w", "loser": "did:l", "amount_units": 9})},
			[]ReputationEvent{{Kind: ReputationDisputeLoss, A: "did:w", B: "did:l", Units: 9}}},
		{"dispute not from a TEG", &events.Envelope{Type: typeDisputeRuled, Source: events.SourceRegistry, Payload: payload(map[string]any{"winner": "did:w", "loser": "did:l", "amount_units": 9})}, nil},
		{"dispute against oneself", &events.Envelope{Type: typeDisputeRuled, Source: events.SourceTEG, Payload: payload(map[string]any{"winner": "did:w", "loser": "did:w", "amount_units": 9})}, nil},
	}
	for _, c := range cases {
		require.Equal(t, c.want, appendReputation(nil, c.env), c.name)
	}
}
