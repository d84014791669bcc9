// Package reputation is the reputation run as a business flow: merge the
// events since the previous run into its graph, compute EigenTrust
// (package eigentrust), store the scores with the run's inputs and
// digests, publish TrustScoresPublished and flag agents whose trust fell
// below the enforcement floor; and the read side (an agent's score, a
// run's inputs, a trust scorer for the reputation bond).
package reputation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/reputation/eigentrust"
)

// Params is the JSON form of a run's parameters, stored with the run and
// served with it, so anyone can recompute.
type Params struct {
	Algorithm     string   `json:"algorithm"` // "eigentrust-v1"
	Alpha         float64  `json:"alpha"`
	Epsilon       float64  `json:"epsilon"`
	MaxIterations int      `json:"max_iterations"`
	PairCapUnits  int64    `json:"pair_cap_units"`
	PreTrusted    []string `json:"pre_trusted"`
}

// Algorithm names the computation a run's digest depends on.
const Algorithm = "eigentrust-v1"

// ToEigenTrust converts; an unknown algorithm is refused.
func (p Params) ToEigenTrust() (eigentrust.Params, error) {
	if p.Algorithm != Algorithm {
		return eigentrust.Params{}, fmt.Errorf("reputation: unknown algorithm %q", p.Algorithm)
	}
	ep := eigentrust.Params{Alpha: p.Alpha, Epsilon: p.Epsilon, MaxIterations: p.MaxIterations, PairCapUnits: p.PairCapUnits, PreTrusted: p.PreTrusted}
	return ep, ep.Validate()
}

// FromEigenTrust is the stored form of p.
func FromEigenTrust(p eigentrust.Params) Params {
	pre := p.PreTrusted
	if pre == nil {
		pre = []string{}
	}
	return Params{Algorithm: Algorithm, Alpha: p.Alpha, Epsilon: p.Epsilon, MaxIterations: p.MaxIterations, PairCapUnits: p.PairCapUnits, PreTrusted: pre}
}

// PublishedPayload is TrustScoresPublished's payload.
type PublishedPayload struct {
	RunID       string    `json:"run_id"`
	Seq         int64     `json:"seq"`
	PrevRunID   string    `json:"prev_run_id"`
	ComputedAt  time.Time `json:"computed_at"`
	Digest      string    `json:"digest"`       // hex SHA-256 of the score vector (eigentrust.Result.Digest)
	InputDigest string    `json:"input_digest"` // hex SHA-256 of the canonical graph
	Agents      int       `json:"agents"`
	Edges       int       `json:"edges"`
	Iterations  int       `json:"iterations"`
	Converged   bool      `json:"converged"`
	Breaches    int       `json:"breaches"`
}

// BreachPayload is ReputationThresholdBreached's payload.
type BreachPayload struct {
	RunID        string `json:"run_id"`
	Agent        string `json:"agent"`
	TrustBps     int64  `json:"trust_bps"`
	PrevTrustBps int64  `json:"previous_trust_bps"`
	FloorBps     int64  `json:"floor_bps"`
}

// Summary is what a run returns to its workflow.
type Summary struct {
	RunID      string
	Seq        int64
	Agents     int
	Edges      int
	Iterations int
	Converged  bool
	Digest     string
	Merged     int64 // events merged by this run
	Breaches   int
	Created    bool // false: the run was already stored
}

// Metrics of the runs.
type Metrics struct {
	Breaches prometheus.Counter
	Runs     prometheus.Counter
	Seconds  prometheus.Gauge
	Agents   prometheus.Gauge
}

// NewMetrics registers the run metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Breaches: prometheus.NewCounter(prometheus.CounterOpts{Name: "reputation_threshold_breaches_total", Help: "Agents flagged because their trust fell below the enforcement floor in a run."}),
		Runs:     prometheus.NewCounter(prometheus.CounterOpts{Name: "reputation_runs_total", Help: "Reputation runs stored."}),
		Seconds:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "reputation_last_run_seconds", Help: "Duration of the last reputation run's merge and computation."}),
		Agents:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "reputation_agents", Help: "Agents scored by the last reputation run."}),
	}
	if reg != nil {
		reg.MustRegister(m.Breaches, m.Runs, m.Seconds, m.Agents)
	}
	return m
}

// Store is what a run needs of the EventStore (ingest.ReputationStore).
type Store interface {
	Run(ctx context.Context, runID string, withGraph bool) (ingest.ReputationRunRecord, error)
	LatestRun(ctx context.Context, withGraph bool) (ingest.ReputationRunRecord, error)
	ReadSince(ctx context.Context, scan ingest.ReputationScan, now time.Time) ([]ingest.ReputationEvent, ingest.ReputationScan, error)
	Scores(ctx context.Context, runID string, agents []string) (map[string]ingest.ReputationScore, error)
	Score(ctx context.Context, agent string) (ingest.ReputationScore, ingest.ReputationRunRecord, error)
	SaveRun(ctx context.Context, r ingest.ReputationRunRecord, scores []ingest.ReputationScore, envs []events.Envelope) (ingest.ReputationRunRecord, bool, error)
}

var _ Store = (*ingest.ReputationStore)(nil)

// Slasher force-unstakes an agent's stake for an enforcement case
// (ledgerstore.SlashStake through the node): idempotent per case ID.
type Slasher interface {
	SlashStake(ctx context.Context, agentDID, caseID, reason string) error
}

// Service runs and serves reputation on the node hosting the frame's
// EventStore.
type Service struct {
	Store  Store
	Params eigentrust.Params
	// BreachFloorBps: an agent whose earned trust falls from at least this
	// to below it in a run is flagged (0: no flagging).
	BreachFloorBps int64
	// Slasher, when set (config: slash on breach, off by default), slashes
	// the stake of every agent a run flags, case "reputation-breach-<run>-<agent>".
	Slasher Slasher
	Metrics *Metrics
	Now     func() time.Time
	Log     *slog.Logger
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// Run computes and stores the run runID (the workflow's ID, so a retried
// or replayed run is the same run): idempotent, a stored run is returned
// as it was. It continues the newest stored run; if another run continued
// it meanwhile, the store refuses with Conflict and the caller retries.
func (s *Service) Run(ctx context.Context, runID string) (Summary, error) {
	if runID == "" {
		return Summary{}, apperr.New(apperr.Invalid, "a reputation run needs an ID")
	}
	if done, err := s.Store.Run(ctx, runID, false); err == nil {
		// Stored by an earlier attempt, which may have stopped before its
		// slashes: they are idempotent, so they are asked for again.
		return summaryOf(done, false), s.slash(ctx, done)
	} else if !apperr.Is(err, apperr.NotFound) {
		return Summary{}, err
	}
	start := time.Now()
	g := eigentrust.NewGraph()
	var scan ingest.ReputationScan
	prevID, seq := "", int64(1)
	prev, err := s.Store.LatestRun(ctx, true)
	switch {
	case apperr.Is(err, apperr.NotFound):
	case err != nil:
		return Summary{}, err
	default:
		if g, err = DecodeGraph(prev.Graph, prev.InputDigest); err != nil {
			return Summary{}, fmt.Errorf("run %s's graph: %w", prev.RunID, err)
		}
		scan, prevID, seq = prev.Scan, prev.RunID, prev.Seq+1
	}
	now := s.now()
	evs, next, err := s.Store.ReadSince(ctx, scan, now)
	if err != nil {
		return Summary{}, err
	}
	Apply(g, evs)
	res, err := eigentrust.Compute(g, s.Params)
	if err != nil {
		return Summary{}, err
	}
	enc := g.Encode()
	inDigest := sha256.Sum256(enc)
	digest := res.Digest(s.Params)
	blob, err := compress(enc)
	if err != nil {
		return Summary{}, err
	}
	params, err := json.Marshal(FromEigenTrust(s.Params))
	if err != nil {
		return Summary{}, err
	}
	bps := res.EarnedBps(s.Params)
	ranks, pcts := res.Ranks()
	scores := make([]ingest.ReputationScore, len(res.Agents))
	var below []string
	for i, a := range res.Agents {
		scores[i] = ingest.ReputationScore{Agent: a, Score: res.Scores[i], TrustBps: bps[i], Rank: ranks[i], Percentile: pcts[i]}
		if s.BreachFloorBps > 0 && bps[i] < s.BreachFloorBps {
			below = append(below, a)
		}
	}
	var envs []events.Envelope
	var breached []string
	if prevID != "" && len(below) > 0 {
		before, err := s.Store.Scores(ctx, prevID, below)
		if err != nil {
			return Summary{}, err
		}
		for i, a := range res.Agents {
			b, ok := before[a]
			if !ok || b.TrustBps < s.BreachFloorBps || bps[i] >= s.BreachFloorBps {
				continue
			}
			env, err := newEvent(events.TypeReputationThresholdBreached, "reputation-breach-"+runID+"-"+a, a, now,
				BreachPayload{RunID: runID, Agent: a, TrustBps: bps[i], PrevTrustBps: b.TrustBps, FloorBps: s.BreachFloorBps})
			if err != nil {
				return Summary{}, err
			}
			envs = append(envs, env)
			breached = append(breached, a)
		}
	}
	rec := ingest.ReputationRunRecord{
		RunID: runID, PrevRunID: prevID, Seq: seq, ComputedAt: now, Scan: next, EventsMerged: int64(len(evs)),
		Params: params, Agents: len(res.Agents), Edges: res.Edges, Iterations: res.Iterations, Converged: res.Converged,
		Delta: res.Delta, Breached: breached, InputDigest: inDigest[:], Digest: digest[:], Graph: blob,
	}
	pub, err := newEvent(events.TypeTrustScoresPublished, "trust-scores-"+runID, "reputation", now, PublishedPayload{
		RunID: runID, Seq: seq, PrevRunID: prevID, ComputedAt: now, Digest: hex.EncodeToString(digest[:]),
		InputDigest: hex.EncodeToString(inDigest[:]), Agents: len(res.Agents), Edges: res.Edges,
		Iterations: res.Iterations, Converged: res.Converged, Breaches: len(breached),
	})
	if err != nil {
		return Summary{}, err
	}
	envs = append([]events.Envelope{pub}, envs...)
	stored, created, err := s.Store.SaveRun(ctx, rec, scores, envs)
	if err != nil {
		return Summary{}, err
	}
	sum := summaryOf(stored, created)
	if created {
		if s.Metrics != nil {
			s.Metrics.Runs.Inc()
			s.Metrics.Breaches.Add(float64(len(breached)))
			s.Metrics.Seconds.Set(time.Since(start).Seconds())
			s.Metrics.Agents.Set(float64(len(res.Agents)))
		}
		if s.Log != nil {
			s.Log.Info("reputation run", "run", runID, "seq", seq, "agents", len(res.Agents), "edges", res.Edges,
				"merged", len(evs), "iterations", res.Iterations, "converged", res.Converged, "breaches", len(breached))
		}
	}
	return sum, s.slash(ctx, stored)
}

// slash slashes the agents run flagged, when slashing on breach is on.
func (s *Service) slash(ctx context.Context, run ingest.ReputationRunRecord) error {
	if s.Slasher == nil {
		return nil
	}
	for _, a := range run.Breached {
		if err := s.Slasher.SlashStake(ctx, a, "reputation-breach-"+run.RunID+"-"+a, "trust fell below the enforcement floor in reputation run "+run.RunID); err != nil {
			return fmt.Errorf("slash %s: %w", a, err)
		}
	}
	return nil
}

func summaryOf(r ingest.ReputationRunRecord, created bool) Summary {
	return Summary{RunID: r.RunID, Seq: r.Seq, Agents: r.Agents, Edges: r.Edges, Iterations: r.Iterations,
		Converged: r.Converged, Digest: hex.EncodeToString(r.Digest), Merged: r.EventsMerged, Breaches: len(r.Breached), Created: created}
}

func newEvent(typ, key, subject string, at time.Time, payload any) (events.Envelope, error) {
	env, err := events.New(typ, key, subject, at)
	if err != nil {
		return env, err
	}
	env.Payload, err = json.Marshal(payload)
	return env, err
}

// Apply merges observations into g.
func Apply(g *eigentrust.Graph, evs []ingest.ReputationEvent) {
	for _, e := range evs {
		switch e.Kind {
		case ingest.ReputationTransfer:
			g.AddTransfer(e.A, e.B, e.Units)
		case ingest.ReputationDisputeLoss:
			g.AddDisputeLoss(e.A, e.B, e.Units)
		case ingest.ReputationSlash:
			g.AddSlash(e.A)
		}
	}
}

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(1<<31))
)

func compress(b []byte) ([]byte, error) { return zenc.EncodeAll(b, nil), nil }

// DecodeGraph decompresses a stored graph, checks it against its digest
// and decodes it.
func DecodeGraph(blob, inputDigest []byte) (*eigentrust.Graph, error) {
	raw, err := zdec.DecodeAll(blob, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress graph: %w", err)
	}
	if d := sha256.Sum256(raw); hex.EncodeToString(d[:]) != hex.EncodeToString(inputDigest) {
		return nil, fmt.Errorf("graph does not match its input digest")
	}
	return eigentrust.Decode(raw)
}

// Verify recomputes a run from its graph (compressed, as stored and
// served) and parameters and reports the digest it gets; ok when it is
// the published one.
func Verify(blob []byte, params Params, inputDigest, digest string) (got string, ok bool, err error) {
	in, err := hex.DecodeString(inputDigest)
	if err != nil {
		return "", false, fmt.Errorf("input digest: %w", err)
	}
	g, err := DecodeGraph(blob, in)
	if err != nil {
		return "", false, err
	}
	ep, err := params.ToEigenTrust()
	if err != nil {
		return "", false, err
	}
	res, err := eigentrust.Compute(g, ep)
	if err != nil {
		return "", false, err
	}
	d := res.Digest(ep)
	got = hex.EncodeToString(d[:])
	return got, got == digest, nil
}

// TrustScore implements the bond's trust scorer (bonds.TrustScorer): the
// agent's earned trust in basis points in the newest run that scored it; 0
// for an agent no run has scored (nobody has trusted it yet).
func (s *Service) TrustScore(ctx context.Context, agentDID string) (int64, error) {
	sc, _, err := s.Store.Score(ctx, agentDID)
	if apperr.Is(err, apperr.NotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return sc.TrustBps, nil
}
