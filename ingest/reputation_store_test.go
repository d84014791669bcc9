package ingest_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// The run store on Postgres: a run is stored once (a second save returns
// it as stored, writing nothing), two runs cannot continue the same run,
// an agent's score is its newest, and runs beyond the kept window go with
// their scores.
func TestReputationStoreRuns(t *testing.T) {
	testenv.SkipWithoutServices(t)
	ctx := context.Background()
	es := testenv.NewDB(t, db.RoleEventStore)
	policy, err := db.LoadPolicy(ctx, es.Pool)
	require.NoError(t, err)
	s := ingest.NewReputationStore(es.Pool, db.NewOutboxWriter("f", "r", events.SourceEventStore, policy.Guard()))
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	run := func(id, prev string, seq int64, bps int64) ingest.ReputationRunRecord {
		return ingest.ReputationRunRecord{RunID: id, PrevRunID: prev, Seq: seq, ComputedAt: now, Params: json.RawMessage(`{}`),
			Scan: ingest.ReputationScan{From: seq}, InputDigest: []byte{1}, Digest: []byte{byte(bps)}, Graph: []byte{2}, Breached: []string{"did:b"}}
	}
	published := func(id string) events.Envelope {
		env, err := events.New(events.TypeTrustScoresPublished, "trust-scores-"+id, "reputation", now)
		require.NoError(t, err)
		env.Payload = json.RawMessage(`{}`)
		return env
	}
	save := func(r ingest.ReputationRunRecord, bps int64) (bool, error) {
		_, created, err := s.SaveRun(ctx, r, []ingest.ReputationScore{{Agent: "did:a", Score: 0.5, TrustBps: bps, Rank: 1, Percentile: 100}}, []events.Envelope{published(r.RunID)})
		return created, err
	}
	_, err = s.LatestRun(ctx, false)
	require.True(t, apperr.Is(err, apperr.NotFound))

	created, err := save(run("r1", "", 1, 10), 10)
	require.NoError(t, err)
	require.True(t, created)
	created, err = save(run("r1", "", 1, 10), 10)
	require.NoError(t, err)
	require.False(t, created, "stored once")
	_, err = save(run("rx", "", 1, 10), 10)
	require.True(t, apperr.Is(err, apperr.Conflict), "a second first run: %v", err)
	created, err = save(run("r2", "r1", 2, 20), 20)
	require.NoError(t, err)
	require.True(t, created)
	_, err = save(run("ry", "r1", 3, 30), 30)
	require.True(t, apperr.Is(err, apperr.Conflict), "r1 was continued already: %v", err)

	latest, err := s.LatestRun(ctx, true)
	require.NoError(t, err)
	require.Equal(t, "r2", latest.RunID)
	require.Equal(t, []byte{2}, latest.Graph)
	require.Equal(t, []string{"did:b"}, latest.Breached)
	sc, r, err := s.Score(ctx, "did:a")
	require.NoError(t, err)
	require.EqualValues(t, 20, sc.TrustBps)
	require.Equal(t, "r2", r.RunID)
	var outbox int
	require.NoError(t, es.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_type = 'TrustScoresPublished'`).Scan(&outbox))
	require.Equal(t, 2, outbox, "one event per stored run")

	// Far ahead: r1 and r2 fall out of the kept window.
	_, err = save(run("r200", "r2", 2+ingest.ReputationRunsKept, 40), 40)
	require.NoError(t, err)
	_, err = s.Run(ctx, "r1", false)
	require.True(t, apperr.Is(err, apperr.NotFound))
	got, err := s.Scores(ctx, "r2", []string{"did:a"})
	require.NoError(t, err)
	require.Empty(t, got)
}
