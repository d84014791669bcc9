package reputation

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/reputation/eigentrust"
)

// memStore is the EventStore side of runs in memory: pending events are
// what the log holds beyond the last run.
type memStore struct {
	runs    []ingest.ReputationRunRecord
	scores  map[string]map[string]ingest.ReputationScore
	pending []ingest.ReputationEvent
	envs    []events.Envelope
}

func newMemStore() *memStore {
	return &memStore{scores: map[string]map[string]ingest.ReputationScore{}}
}

func (m *memStore) Run(_ context.Context, id string, _ bool) (ingest.ReputationRunRecord, error) {
	for _, r := range m.runs {
		if r.RunID == id {
			return r, nil
		}
	}
	return ingest.ReputationRunRecord{}, apperr.New(apperr.NotFound, "no run")
}

func (m *memStore) LatestRun(_ context.Context, _ bool) (ingest.ReputationRunRecord, error) {
	if len(m.runs) == 0 {
		return ingest.ReputationRunRecord{}, apperr.New(apperr.NotFound, "no run")
	}
	return m.runs[len(m.runs)-1], nil
}

func (m *memStore) ReadSince(_ context.Context, scan ingest.ReputationScan, _ time.Time) ([]ingest.ReputationEvent, ingest.ReputationScan, error) {
	evs := m.pending
	m.pending = nil
	return evs, ingest.ReputationScan{From: scan.From + 1, Legacy: true}, nil
}

func (m *memStore) Scores(_ context.Context, runID string, agents []string) (map[string]ingest.ReputationScore, error) {
	out := map[string]ingest.ReputationScore{}
	for _, a := range agents {
		if s, ok := m.scores[runID][a]; ok {
			out[a] = s
		}
	}
	return out, nil
}

func (m *memStore) Score(_ context.Context, agent string) (ingest.ReputationScore, ingest.ReputationRunRecord, error) {
	for i := len(m.runs) - 1; i >= 0; i-- {
		if s, ok := m.scores[m.runs[i].RunID][agent]; ok {
			return s, m.runs[i], nil
		}
	}
	return ingest.ReputationScore{}, ingest.ReputationRunRecord{}, apperr.New(apperr.NotFound, "no score")
}

func (m *memStore) SaveRun(_ context.Context, r ingest.ReputationRunRecord, scores []ingest.ReputationScore, envs []events.Envelope) (ingest.ReputationRunRecord, bool, error) {
	for _, x := range m.runs {
		if x.RunID == r.RunID {
			return x, false, nil
		}
		if x.PrevRunID == r.PrevRunID {
			return r, false, apperr.New(apperr.Conflict, "continued already")
		}
	}
	m.runs = append(m.runs, r)
	m.scores[r.RunID] = map[string]ingest.ReputationScore{}
	for _, s := range scores {
		m.scores[r.RunID][s.Agent] = s
	}
	m.envs = append(m.envs, envs...)
	return r, true, nil
}

func transfer(a, b string, units int64) ingest.ReputationEvent {
	return ingest.ReputationEvent{Kind: ingest.ReputationTransfer, A: a, B: b, Units: units}
}

func newService(store Store) (*Service, *Metrics) {
	m := NewMetrics(prometheus.NewRegistry())
	return &Service{Store: store, Params: eigentrust.DefaultParams(), BreachFloorBps: 2000, Metrics: m,
		Now: func() time.Time { return time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC) }}, m
}

func TestRunStoresPublishesAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	st.pending = []ingest.ReputationEvent{transfer("did:a", "did:b", 5), transfer("did:b", "did:a", 5), transfer("did:c", "did:a", 5)}
	s, m := newService(st)
	sum, err := s.Run(ctx, "run-1")
	require.NoError(t, err)
	require.True(t, sum.Created)
	require.Equal(t, 3, sum.Agents)
	require.EqualValues(t, 3, sum.Merged)
	require.Len(t, st.envs, 1)
	require.Equal(t, events.TypeTrustScoresPublished, st.envs[0].Type)
	require.Equal(t, "trust-scores-run-1", st.envs[0].IdempotencyKey)
	var pub PublishedPayload
	require.NoError(t, json.Unmarshal(st.envs[0].Payload, &pub))
	require.Equal(t, sum.Digest, pub.Digest)

	// The stored inputs recompute to the published digest.
	var params Params
	require.NoError(t, json.Unmarshal(st.runs[0].Params, &params))
	got, ok, err := Verify(st.runs[0].Graph, params, hex.EncodeToString(st.runs[0].InputDigest), pub.Digest)
	require.NoError(t, err)
	require.True(t, ok, got)
	// A tampered graph is refused, not recomputed.
	bad := append([]byte(nil), st.runs[0].Graph...)
	bad[len(bad)/2] ^= 0xff
	_, _, err = Verify(bad, params, hex.EncodeToString(st.runs[0].InputDigest), pub.Digest)
	require.Error(t, err)

	// The same run again: returned as stored, nothing written twice.
	again, err := s.Run(ctx, "run-1")
	require.NoError(t, err)
	require.False(t, again.Created)
	require.Equal(t, sum.Digest, again.Digest)
	require.Len(t, st.runs, 1)
	require.Len(t, st.envs, 1)
	require.Equal(t, 1.0, testutil.ToFloat64(m.Runs))

	bps, err := s.TrustScore(ctx, "did:a")
	require.NoError(t, err)
	require.Positive(t, bps)
	bps, err = s.TrustScore(ctx, "did:nobody")
	require.NoError(t, err)
	require.Zero(t, bps, "no score: the floor is not passed")

	_, err = s.Run(ctx, "")
	require.True(t, apperr.Is(err, apperr.Invalid))
}

// An agent whose trust falls from above the floor to below it is flagged
// once (event + metric); one that was never above it is not.
func TestBreachFlaggedWhenTrustFalls(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	st.pending = []ingest.ReputationEvent{transfer("did:a", "did:b", 5), transfer("did:b", "did:a", 5), transfer("did:c", "did:a", 5),
		transfer("did:fresh", "did:a", 5)}
	s, m := newService(st)
	_, err := s.Run(ctx, "run-1")
	require.NoError(t, err)
	require.GreaterOrEqual(t, st.scores["run-1"]["did:a"].TrustBps, int64(2000))
	require.Zero(t, st.scores["run-1"]["did:fresh"].TrustBps)

	st.pending = []ingest.ReputationEvent{{Kind: ingest.ReputationSlash, A: "did:a"}}
	sum, err := s.Run(ctx, "run-2")
	require.NoError(t, err)
	require.Equal(t, 1, sum.Breaches)
	require.Zero(t, st.scores["run-2"]["did:a"].TrustBps, "a slashed agent keeps only the teleportation share")
	var breaches []BreachPayload
	for _, e := range st.envs {
		if e.Type == events.TypeReputationThresholdBreached {
			var b BreachPayload
			require.NoError(t, json.Unmarshal(e.Payload, &b))
			require.Equal(t, "reputation-breach-run-2-did:a", e.IdempotencyKey)
			breaches = append(breaches, b)
		}
	}
	require.Equal(t, []BreachPayload{{RunID: "run-2", Agent: "did:a", TrustBps: 0, PrevTrustBps: st.scores["run-1"]["did:a"].TrustBps, FloorBps: 2000}}, breaches)
	require.Equal(t, 1.0, testutil.ToFloat64(m.Breaches))

	// The stored run names the flagged agent; run again (a retried
	// activity), it is not flagged twice.
	again, err := s.Run(ctx, "run-2")
	require.NoError(t, err)
	require.False(t, again.Created)
	require.Equal(t, 1, again.Breaches)
	require.Equal(t, 1.0, testutil.ToFloat64(m.Breaches))

	// Still below in the next run: not flagged again.
	sum, err = s.Run(ctx, "run-3")
	require.NoError(t, err)
	require.Zero(t, sum.Breaches)
	require.Equal(t, 1.0, testutil.ToFloat64(m.Breaches))
}

// Two runs racing from the same predecessor: the second is refused with
// Conflict (its activity retries and continues the winner).
func TestRunRefusedWhenAnotherContinuedFirst(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	st.pending = []ingest.ReputationEvent{transfer("did:a", "did:b", 5)}
	s, _ := newService(st)
	_, err := s.Run(ctx, "run-1")
	require.NoError(t, err)
	// run-x reads run-1 as the newest, but run-2 continued it meanwhile.
	st.runs = append(st.runs, ingest.ReputationRunRecord{RunID: "run-2", PrevRunID: "run-1", Seq: 2})
	s.Store = &staleLatest{memStore: st, latest: st.runs[0]}
	_, err = s.Run(ctx, "run-x")
	require.True(t, apperr.Is(err, apperr.Conflict), "%v", err)
}

type staleLatest struct {
	*memStore
	latest ingest.ReputationRunRecord
}

func (s *staleLatest) LatestRun(context.Context, bool) (ingest.ReputationRunRecord, error) {
	return s.latest, nil
}

// The HTTP scorer trusts nothing in the answer: another agent's score,
// basis points out of range or a malformed body are errors (the bond check
// retries); 404 is no score.
func TestHTTPScorerChecksTheAnswer(t *testing.T) {
	answers := map[string]func(w http.ResponseWriter){
		"did:ok":      func(w http.ResponseWriter) { fmt.Fprint(w, `{"agent_did":"did:ok","trust_bps":7000}`) },
		"did:none":    func(w http.ResponseWriter) { w.WriteHeader(404) },
		"did:other":   func(w http.ResponseWriter) { fmt.Fprint(w, `{"agent_did":"did:ok","trust_bps":7000}`) },
		"did:range":   func(w http.ResponseWriter) { fmt.Fprint(w, `{"agent_did":"did:range","trust_bps":10001}`) },
		"did:garbage": func(w http.ResponseWriter) { fmt.Fprint(w, `<html>`) },
		"did:missing": func(w http.ResponseWriter) { fmt.Fprint(w, `{"agent_did":"did:missing"}`) },
		"did:down":    func(w http.ResponseWriter) { w.WriteHeader(503) },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for did, f := range answers {
			if r.URL.Path == "/api/v1/reputation/"+did+"/trust-score" {
				f(w)
				return
			}
		}
		w.WriteHeader(500)
	}))
	defer srv.Close()
	h := &HTTPScorer{BaseURL: srv.URL}
	ctx := context.Background()
	bps, err := h.TrustScore(ctx, "did:ok")
	require.NoError(t, err)
	require.EqualValues(t, 7000, bps)
	bps, err = h.TrustScore(ctx, "did:none")
	require.NoError(t, err)
	require.Zero(t, bps)
	for _, did := range []string{"did:other", "did:range", "did:garbage", "did:missing", "did:down"} {
		_, err := h.TrustScore(ctx, did)
		require.Error(t, err, did)
	}
}

type slashes []string

func (s *slashes) SlashStake(_ context.Context, agent, caseID, reason string) error {
	*s = append(*s, agent+" "+caseID)
	return nil
}

// Slashing on breach (off unless a Slasher is set) slashes each flagged
// agent under a case derived from the run; a retried run asks again with
// the same case, which the ledger answers with the recorded slash.
func TestSlashOnBreach(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	st.pending = []ingest.ReputationEvent{transfer("did:a", "did:b", 5), transfer("did:b", "did:a", 5), transfer("did:c", "did:a", 5)}
	s, _ := newService(st)
	var got slashes
	s.Slasher = &got
	_, err := s.Run(ctx, "run-1")
	require.NoError(t, err)
	require.Empty(t, got, "nobody fell")
	st.pending = []ingest.ReputationEvent{{Kind: ingest.ReputationDisputeLoss, A: "did:b", B: "did:a", Units: 1 << 40}, {Kind: ingest.ReputationSlash, A: "did:a"}}
	_, err = s.Run(ctx, "run-2")
	require.NoError(t, err)
	require.Equal(t, slashes{"did:a reputation-breach-run-2-did:a"}, got)
	_, err = s.Run(ctx, "run-2")
	require.NoError(t, err)
	require.Equal(t, slashes{"did:a reputation-breach-run-2-did:a", "did:a reputation-breach-run-2-did:a"}, got)
}
