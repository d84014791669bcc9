package events

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewAndValidate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.FixedZone("x", 3600))
	e, err := New("TokensTransferred", "xfer-1", "did:theprotocol:abc", now)
	require.NoError(t, err)
	require.Equal(t, 7, int(e.EventID.Version()), "event IDs are UUIDv7")
	require.Equal(t, time.UTC, e.OccurredAt.Location())
	require.Error(t, e.Validate(), "frame/registry/source missing")

	e.Frame, e.Registry, e.Source = "alpha", "alpha-main", SourceTEG
	require.NoError(t, e.Validate())

	bad := e
	bad.IdempotencyKey = ""
	require.ErrorContains(t, bad.Validate(), "idempotency_key")
	bad = e
	bad.Postings = make([]Posting, MaxPostings+1)
	require.ErrorContains(t, bad.Validate(), "postings")

	raw, err := json.Marshal(e)
	require.NoError(t, err)
	var back Envelope
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, e.EventID, back.EventID)
	require.True(t, e.OccurredAt.Equal(back.OccurredAt))
}
