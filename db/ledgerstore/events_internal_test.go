package ledgerstore

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/events"
)

// The hand-written envelope encoder must produce the same events as
// transferEvents + json.Marshal (the db.OutboxWriter path), apart from the
// random event ids.
func TestEncodeTransferEventsMatchesEnvelopes(t *testing.T) {
	t.Parallel()
	s := New(nil, Options{Frame: "alpha", Registry: "alpha-main"})
	now := time.Date(2026, 11, 26, 12, 0, 0, 123456000, time.UTC)
	hold := uuid.Must(uuid.NewV7())
	ts := []Transfer{
		{ID: uuid.Must(uuid.NewV7()), From: "did:theprotocol:a", To: "dev:b", AmountUnits: 1000, FeeUnits: 5, NetUnits: 995, FeeBps: 50, Memo: "plain memo", CreatedAt: now},
		{ID: uuid.Must(uuid.NewV7()), From: "dev:b", To: "did:theprotocol:a", AmountUnits: 7, NetUnits: 7, Memo: "", CreatedAt: now, HoldID: &hold},
		{ID: uuid.Must(uuid.NewV7()), From: "dev:c", To: "dev:b", AmountUnits: 1 << 40, FeeUnits: 1 << 33, NetUnits: 1<<40 - 1<<33, FeeBps: 500,
			Memo: "quotes \" back\\slash <html> & tab\t é ☃ \u2028", CreatedAt: now},
	}
	got, err := s.encodeTransferEvents(context.Background(), nil, ts, now)
	require.NoError(t, err)
	var want []events.Envelope
	for _, tr := range ts {
		envs, err := transferEvents(tr)
		require.NoError(t, err)
		want = append(want, envs...)
	}
	require.Len(t, got.bodies, len(want))
	for i, env := range want {
		env.Frame, env.Registry, env.Source = "alpha", "alpha-main", events.SourceTEG
		var back events.Envelope
		require.NoError(t, json.Unmarshal([]byte(got.bodies[i]), &back))
		require.Equal(t, got.ids[i], back.EventID, "event id column matches the envelope")
		require.NoError(t, back.Validate())
		env.EventID = back.EventID
		wantRaw, err := json.Marshal(env)
		require.NoError(t, err)
		require.Equal(t, string(wantRaw), string(got.bodies[i]), "byte-identical to encoding/json")
		require.Equal(t, env.IdempotencyKey, got.keys[i])
		require.Equal(t, env.Type, got.types[i])
		require.Equal(t, env.Subject, got.subjects[i])
	}
}

func TestIsClientKeyMatchesPattern(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 200)
	for _, k := range []string{"", "a", "A-z_0.9:x", long, long + "a", "has space", "ünï", "a/b", "a\x00", "key\n", "#internal", "-.:_"} {
		require.Equal(t, clientKeyPattern.MatchString(k), isClientKey(k), "%q", k)
	}
}

// BenchmarkEncodeTransferEvents measures the group committer's envelope
// encoding alone (no database): time and allocations per batch of 1,000
// transfers, half of them with a fee.
func BenchmarkEncodeTransferEvents(b *testing.B) {
	s := New(nil, Options{Frame: "alpha", Registry: "alpha-main"})
	now := time.Date(2026, 11, 26, 12, 0, 0, 123456000, time.UTC)
	ts := make([]Transfer, 1000)
	for i := range ts {
		ts[i] = Transfer{ID: uuid.Must(uuid.NewV7()), From: "did:theprotocol:" + uuid.NewString(), To: "did:theprotocol:" + uuid.NewString(),
			AmountUnits: 100_000, NetUnits: 100_000, Memo: "invoice 42", CreatedAt: now}
		if i%2 == 0 {
			ts[i].FeeUnits, ts[i].NetUnits, ts[i].FeeBps = 500, 99_500, 50
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		r, err := s.encodeTransferEvents(context.Background(), nil, ts, now)
		if err != nil {
			b.Fatal(err)
		}
		r.release()
	}
}
