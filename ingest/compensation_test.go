package ingest_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
)

// Dispute compensation is issuance under its own audit term: a mint and a
// compensation leave the delta at 0, each counted in its term only, and a
// replay and a rebuild agree.
func TestDisputeCompensationHasItsOwnAuditTerm(t *testing.T) {
	ctx := context.Background()
	es, a := newTestApplier(t, nil)
	agent := "did:theprotocol:" + uuid.NewString()
	mk := func(seq int64, typ, key string, postings []events.Posting) ingest.Record {
		env, err := events.New(typ, key, agent, time.Now())
		require.NoError(t, err)
		env.Frame, env.Registry, env.Source, env.Postings, env.Payload = frame, "alpha-main", events.SourceTEG, postings, json.RawMessage(`{}`)
		raw, err := json.Marshal(env)
		require.NoError(t, err)
		return ingest.Record{Value: raw, SourceSeq: seq}
	}
	_, err := a.Apply(ctx, []ingest.Record{
		mk(1, events.TypeTokensIssued, "mint-1", []events.Posting{{Account: "issuance", Bucket: "liquid", Delta: -1000}, {Account: "treasury", Bucket: "liquid", Delta: 1000}}),
		mk(2, events.TypeDisputeCompensationMinted, "dispute-x-compensation", []events.Posting{{Account: "issuance", Bucket: "liquid", Delta: -70}, {Account: agent, Bucket: "liquid", Delta: 70}}),
	})
	require.NoError(t, err)
	rep, err := ingest.Audit(ctx, es.Pool, frame)
	require.NoError(t, err)
	require.EqualValues(t, 1000, rep.TokensIssued)
	require.EqualValues(t, 70, rep.CompensationIssued)
	require.EqualValues(t, 1070, rep.NetSupply)
	require.EqualValues(t, 1070, rep.TotalCirculating)
	require.Zero(t, rep.Delta)
	re, err := ingest.Replay(ctx, es.Pool, frame)
	require.NoError(t, err)
	require.True(t, re.OK, "%+v", re)
	require.EqualValues(t, 70, re.Replayed.CompensationIssued)
	require.NoError(t, ingest.Rebuild(ctx, es.Pool, frame))
	after, err := ingest.Audit(ctx, es.Pool, frame)
	require.NoError(t, err)
	require.EqualValues(t, 70, after.CompensationIssued)
	require.Zero(t, after.Delta)
}
