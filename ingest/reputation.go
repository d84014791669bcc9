package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest/internal/eventdb"
)

// typeDisputeRuled is the dispute ruling the reputation graph reads
// (events.DisputeRuledPayload: winner, loser, amount_units).
const typeDisputeRuled = events.TypeDisputeRuled

// Reputation observation kinds (ReputationEvent.Kind).
const (
	ReputationTransfer    = "transfer"     // A paid B Units
	ReputationDisputeLoss = "dispute-loss" // B lost a dispute to A over Units
	ReputationSlash       = "slash"        // A's stake was slashed
)

// ReputationEvent is one observation of the event graph for a reputation
// run, read from an authenticated event in the log.
type ReputationEvent struct {
	Kind  string
	A, B  string
	Units int64
}

// ReputationScan is where a reputation run stopped in the event log: every
// segment below From has been merged, and so has every one in Done; Gaps
// are ids below one merged that were not visible (a batch still
// committing when its id was drawn), each since GapSeen, kept in view for
// the commit window (then it was rolled back).
type ReputationScan struct {
	From    int64
	Done    []int64
	Gaps    []int64
	GapSeen []time.Time
	// Legacy: the rows stored before segments existed have been merged
	// (the first run does it).
	Legacy bool
}

// ReputationRunRecord is a stored reputation run.
type ReputationRunRecord struct {
	RunID        string
	PrevRunID    string
	Seq          int64
	ComputedAt   time.Time
	Scan         ReputationScan
	EventsMerged int64
	Params       json.RawMessage
	Agents       int
	Edges        int
	Iterations   int
	Converged    bool
	Delta        float64
	Breached     []string // agents flagged below the enforcement floor
	InputDigest  []byte
	Digest       []byte
	Graph        []byte // compressed canonical graph
}

// ReputationScore is one agent's score in a run.
type ReputationScore struct {
	Agent      string
	Score      float64
	TrustBps   int64
	Rank       int
	Percentile float64
}

// ReputationStore keeps reputation runs in the EventStore database and
// reads the event log for them. Only the reputation run writes its tables.
type ReputationStore struct {
	Store  *db.Store
	Outbox *db.OutboxWriter // the EventStore's outbox (source eventstore)
	q      *eventdb.Queries
}

// NewReputationStore returns the store over the EventStore pool.
func NewReputationStore(pool *pgxpool.Pool, outbox *db.OutboxWriter) *ReputationStore {
	return &ReputationStore{Store: db.NewStore(pool, "eventstore"), Outbox: outbox, q: eventdb.New()}
}

// reputationCommitWindow is how long a segment id below one already read
// may still be uncommitted: as the reconciler's scan.
const reputationCommitWindow = time.Minute

// ReputationRunsKept is how many runs are kept, with their scores and
// graphs (a week of hourly runs); older ones are deleted as a new one is
// stored.
const ReputationRunsKept = 168

// maxReputationEvents bounds one run's merge: a run over a long log
// merges the rest in the next runs.
const maxReputationEvents = 5_000_000

func runFromRow(r eventdb.ReputationRunGetRow) ReputationRunRecord {
	return ReputationRunRecord{
		RunID: r.RunID, PrevRunID: r.PrevRunID, Seq: r.Seq, ComputedAt: r.ComputedAt,
		Scan:         ReputationScan{From: r.ScanFrom, Done: r.DoneIds, Gaps: r.GapIds, GapSeen: r.GapSeen, Legacy: true},
		EventsMerged: r.EventsMerged, Params: r.Params, Agents: int(r.Agents), Edges: int(r.Edges),
		Iterations: int(r.Iterations), Converged: r.Converged, Delta: r.Delta, Breached: r.Breached,
		InputDigest: r.InputDigest, Digest: r.Digest,
	}
}

// run reads one run (the latest when runID is ""), with its graph when
// withGraph, in db (a pool or a transaction).
func (s *ReputationStore) run(ctx context.Context, q eventdb.DBTX, runID string, withGraph bool) (ReputationRunRecord, error) {
	var row eventdb.ReputationRunGetRow
	var err error
	if runID == "" {
		var l eventdb.ReputationRunLatestRow
		l, err = s.q.ReputationRunLatest(ctx, q)
		row = eventdb.ReputationRunGetRow(l)
	} else {
		row, err = s.q.ReputationRunGet(ctx, q, runID)
	}
	if db.IsNotFound(err) {
		return ReputationRunRecord{}, apperr.New(apperr.NotFound, "no such reputation run")
	}
	if err != nil {
		return ReputationRunRecord{}, err
	}
	r := runFromRow(row)
	if withGraph {
		if r.Graph, err = s.q.ReputationRunGraph(ctx, q, r.RunID); err != nil {
			return ReputationRunRecord{}, err
		}
	}
	return r, nil
}

// LatestRun is the newest run (NotFound when none has run), with its graph
// when withGraph.
func (s *ReputationStore) LatestRun(ctx context.Context, withGraph bool) (ReputationRunRecord, error) {
	return s.run(ctx, s.Store.Pool, "", withGraph)
}

// Run is the run runID, with its graph when withGraph (NotFound: none).
func (s *ReputationStore) Run(ctx context.Context, runID string, withGraph bool) (ReputationRunRecord, error) {
	if runID == "" {
		return ReputationRunRecord{}, apperr.New(apperr.NotFound, "no such reputation run")
	}
	return s.run(ctx, s.Store.Pool, runID, withGraph)
}

// Score is agent's score in the newest run that scored it, with that run
// (NotFound: no run scored the agent).
func (s *ReputationStore) Score(ctx context.Context, agent string) (ReputationScore, ReputationRunRecord, error) {
	row, err := s.q.ReputationScoreOfAgent(ctx, s.Store.Pool, agent)
	if db.IsNotFound(err) {
		return ReputationScore{}, ReputationRunRecord{}, apperr.New(apperr.NotFound, "agent %s has no trust score", agent)
	}
	if err != nil {
		return ReputationScore{}, ReputationRunRecord{}, err
	}
	run, err := s.Run(ctx, row.RunID, false)
	return ReputationScore{Agent: agent, Score: row.Score, TrustBps: int64(row.TrustBps), Rank: int(row.Rank), Percentile: row.Percentile}, run, err
}

// ReadSince reads the reputation observations the log holds beyond scan,
// in one repeatable-read snapshot, and returns them with where the next
// run starts. Each body is taken only from the place its event row points
// to (a repeat in a segment is not counted twice), and every event in the
// log was authenticated and checked against the emission policy when it
// was ingested. At most about maxReputationEvents are read per call.
func (s *ReputationStore) ReadSince(ctx context.Context, scan ReputationScan, now time.Time) ([]ReputationEvent, ReputationScan, error) {
	var out []ReputationEvent
	var next ReputationScan
	err := s.Store.TxOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		out = out[:0]
		if !scan.Legacy {
			if err := reputationLegacy(ctx, tx, func(env *events.Envelope) { out = appendReputation(out, env) }); err != nil {
				return err
			}
		}
		var read []int64
		// Never nil: a NULL array would make "id <> ALL(…)" match nothing.
		skip := append([]int64{}, scan.Done...)
		if scan.From < 1 {
			scan.From = 1
		}
		var total int
		q := eventdb.New()
		dec := events.NewDecoder()
		from := scan.From
		for total < maxReputationEvents {
			rows, err := tx.Query(ctx, `SELECT id, codec, events, skipped, data FROM event_segments
				WHERE id >= $1 AND id <> ALL($2::bigint[]) ORDER BY id LIMIT $3`, from, skip, reconSegmentPage)
			if err != nil {
				return fmt.Errorf("read segments: %w", err)
			}
			type segment struct {
				id      int64
				codec   string
				n       int32
				skipped []int32
				data    []byte
			}
			var segs []segment
			for rows.Next() {
				var sg segment
				if err := rows.Scan(&sg.id, &sg.codec, &sg.n, &sg.skipped, &sg.data); err != nil {
					rows.Close()
					return fmt.Errorf("read segments: %w", err)
				}
				segs = append(segs, sg)
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("read segments: %w", err)
			}
			for _, sg := range segs {
				envs, err := reputationOfSegment(ctx, tx, q, dec, sg.id, sg.codec, sg.data, int(sg.n), sg.skipped)
				if err != nil {
					return err
				}
				for i := range envs {
					out = appendReputation(out, &envs[i])
				}
				read = append(read, sg.id)
				total += int(sg.n)
			}
			if len(segs) < reconSegmentPage {
				break
			}
			from = segs[len(segs)-1].id + 1
		}
		next = nextScan(scan, read, now)
		return nil
	})
	return out, next, err
}

// nextScan is the bookkeeping after reading segments read beyond scan (as
// the reconciler keeps it): the next run starts at the oldest id below the
// highest known that is neither read nor rolled back (still within the
// commit window), and remembers the ids read at or above it.
func nextScan(scan ReputationScan, read []int64, now time.Time) ReputationScan {
	known := map[int64]bool{}
	top := scan.From - 1
	for _, id := range scan.Done {
		known[id], top = true, max(top, id)
	}
	for _, id := range read {
		known[id], top = true, max(top, id)
	}
	seen := map[int64]time.Time{}
	for i, id := range scan.Gaps {
		if i < len(scan.GapSeen) {
			seen[id] = scan.GapSeen[i]
		}
	}
	next := ReputationScan{From: top + 1, Legacy: true, Done: []int64{}, Gaps: []int64{}, GapSeen: []time.Time{}}
	for id := scan.From; id < top; id++ {
		if known[id] {
			continue
		}
		at, ok := seen[id]
		if !ok {
			at = now
		}
		if now.Sub(at) < reputationCommitWindow {
			next.Gaps, next.GapSeen = append(next.Gaps, id), append(next.GapSeen, at)
			next.From = min(next.From, id)
		}
	}
	for id := range known {
		if id >= next.From {
			next.Done = append(next.Done, id)
		}
	}
	slices.Sort(next.Done)
	return next
}

// reputationWants reports whether a run reads events of this type.
func reputationWants(typ string) bool {
	switch typ {
	case events.TypeTokensTransferred, events.TypeStakeSlashed, typeDisputeRuled:
		return true
	}
	return false
}

// reputationOfSegment decodes one segment and returns the events a run
// reads whose event row points at this very body.
func reputationOfSegment(ctx context.Context, tx pgx.Tx, q *eventdb.Queries, dec *events.Decoder, id int64, codec string, data []byte, n int, skipped []int32) ([]events.Envelope, error) {
	bodies, err := decodeSegment(codec, data, n)
	if err != nil {
		return nil, fmt.Errorf("segment %d: %w", id, err)
	}
	skip := make([]bool, len(bodies))
	for _, p := range skipped {
		if p >= 0 && int(p) < len(skip) {
			skip[p] = true
		}
	}
	var cand []events.Envelope
	var pos []int32
	for i, b := range bodies {
		if skip[i] {
			continue
		}
		var env events.Envelope
		if err := decodeEnvelope(dec, b, &env); err != nil {
			return nil, fmt.Errorf("segment %d: undecodable body %d: %w", id, i, err)
		}
		if reputationWants(env.Type) {
			cand, pos = append(cand, env), append(pos, int32(i))
		}
	}
	var kept []events.Envelope
	for lo := 0; lo < len(cand); lo += reconProbeBatch {
		hi := min(lo+reconProbeBatch, len(cand))
		p := eventdb.ReconEventsByKeysParams{Registries: make([]string, 0, hi-lo), Keys: make([]string, 0, hi-lo)}
		for _, c := range cand[lo:hi] {
			p.Registries, p.Keys = append(p.Registries, c.Registry), append(p.Keys, c.IdempotencyKey)
		}
		found, err := q.ReconEventsByKeys(ctx, tx, p)
		if err != nil {
			return nil, fmt.Errorf("segment %d: look up events: %w", id, err)
		}
		byKey := make(map[string]eventdb.ReconEventsByKeysRow, len(found))
		for _, f := range found {
			byKey[dedupKey(&events.Envelope{Registry: f.Registry, IdempotencyKey: f.IdempotencyKey})] = f
		}
		for i, c := range cand[lo:hi] {
			f, ok := byKey[dedupKey(&c)]
			if !ok || f.SegmentID != id || f.SegmentPos != pos[lo+i] || f.Source != c.Source {
				continue
			}
			kept = append(kept, c)
		}
	}
	return kept, nil
}

// reputationLegacy reads the events stored before segments existed.
func reputationLegacy(ctx context.Context, tx pgx.Tx, fn func(*events.Envelope)) error {
	rows, err := tx.Query(ctx, `SELECT envelope::text FROM events WHERE envelope IS NOT NULL AND event_type = ANY($1::text[])`,
		[]string{events.TypeTokensTransferred, events.TypeStakeSlashed, typeDisputeRuled})
	if err != nil {
		return fmt.Errorf("read legacy events: %w", err)
	}
	defer rows.Close()
	dec := events.NewDecoder()
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return fmt.Errorf("read legacy events: %w", err)
		}
		var env events.Envelope
		if err := decodeEnvelope(dec, []byte(body), &env); err != nil {
			return fmt.Errorf("legacy event: %w", err)
		}
		fn(&env)
	}
	return rows.Err()
}

// isAgent reports whether an account is an agent's (a DID): wallets,
// treasuries and system accounts hold no reputation.
func isAgent(account string) bool { return strings.HasPrefix(account, "did:") }

// appendReputation turns one logged event into its observation, if any.
// Payloads are checked: an event whose payload does not parse, or names
// no agent, contributes nothing.
func appendReputation(out []ReputationEvent, env *events.Envelope) []ReputationEvent {
	switch env.Type {
	case events.TypeTokensTransferred:
		if env.Source != events.SourceTEG {
			return out
		}
		var p struct {
			From           string `json:"from"`
			To             string `json:"to"`
			AmountUnits    int64  `json:"amount_units"`
			SourceRegistry string `json:"source_registry"`
		}
		if json.Unmarshal(env.Payload, &p) != nil || !isAgent(p.From) || !isAgent(p.To) || p.AmountUnits <= 0 {
			return out
		}
		// A cross-registry transfer is logged by both TEGs under one key;
		// count the source registry's copy.
		if p.SourceRegistry != "" && p.SourceRegistry != env.Registry {
			return out
		}
		return append(out, ReputationEvent{Kind: ReputationTransfer, A: p.From, B: p.To, Units: p.AmountUnits})
	case events.TypeStakeSlashed:
		if env.Source != events.SourceTEG {
			return out
		}
		var p struct {
			Owner string `json:"owner"`
		}
		if json.Unmarshal(env.Payload, &p) != nil || !isAgent(p.Owner) {
			return out
		}
		return append(out, ReputationEvent{Kind: ReputationSlash, A: p.Owner})
	case typeDisputeRuled:
		if env.Source != events.SourceTEG {
			return out
		}
		var p struct {
			Winner      string `json:"winner"`
			Loser       string `json:"loser"`
			AmountUnits int64  `json:"amount_units"`
		}
		if json.Unmarshal(env.Payload, &p) != nil || !isAgent(p.Winner) || !isAgent(p.Loser) || p.Winner == p.Loser {
			return out
		}
		return append(out, ReputationEvent{Kind: ReputationDisputeLoss, A: p.Winner, B: p.Loser, Units: max(p.AmountUnits, 0)})
	}
	return out
}

// SaveRun stores a run, its scores and its events (through the outbox) in
// one transaction, and deletes the runs older than the last
// ReputationRunsKept. It is idempotent on the run ID: a run already stored
// is returned as stored (created false). A run whose predecessor another
// run has already continued is refused with Conflict: the caller computes
// again from the newer run.
func (s *ReputationStore) SaveRun(ctx context.Context, r ReputationRunRecord, scores []ReputationScore, envs []events.Envelope) (stored ReputationRunRecord, created bool, err error) {
	err = s.Store.Tx(ctx, func(tx pgx.Tx) error {
		prev, err := s.run(ctx, tx, r.RunID, false)
		if err == nil {
			stored, created = prev, false
			return nil
		}
		if !apperr.Is(err, apperr.NotFound) {
			return err
		}
		err = s.q.ReputationRunInsert(ctx, tx, eventdb.ReputationRunInsertParams{
			RunID: r.RunID, PrevRunID: r.PrevRunID, Seq: r.Seq, ComputedAt: r.ComputedAt,
			ScanFrom: r.Scan.From, DoneIds: nonNil(r.Scan.Done), GapIds: nonNil(r.Scan.Gaps), GapSeen: nonNil(r.Scan.GapSeen),
			EventsMerged: r.EventsMerged, Params: r.Params, Agents: int32(r.Agents), Edges: int32(r.Edges),
			Iterations: int32(r.Iterations), Converged: r.Converged, Delta: r.Delta, Breached: nonNil(r.Breached),
			InputDigest: r.InputDigest, Digest: r.Digest, Graph: r.Graph,
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return apperr.New(apperr.Conflict, "reputation run %s: another run continued %q first", r.RunID, r.PrevRunID)
		}
		if err != nil {
			return fmt.Errorf("insert reputation run: %w", err)
		}
		p := eventdb.ReputationScoresInsertParams{RunID: r.RunID, Agents: make([]string, len(scores)), Scores: make([]float64, len(scores)),
			TrustBps: make([]int32, len(scores)), Ranks: make([]int32, len(scores)), Percentiles: make([]float64, len(scores))}
		for i, sc := range scores {
			p.Agents[i], p.Scores[i], p.TrustBps[i], p.Ranks[i], p.Percentiles[i] = sc.Agent, sc.Score, int32(sc.TrustBps), int32(sc.Rank), sc.Percentile
		}
		if err := s.q.ReputationScoresInsert(ctx, tx, p); err != nil {
			return fmt.Errorf("insert reputation scores: %w", err)
		}
		if err := s.q.ReputationRunsPrune(ctx, tx, r.Seq-ReputationRunsKept); err != nil {
			return fmt.Errorf("prune reputation runs: %w", err)
		}
		if err := s.Outbox.WriteBatch(ctx, tx, envs); err != nil {
			return err
		}
		stored, created = r, true
		return nil
	})
	return stored, created, err
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// Scores are a run's scores of the given agents, by agent.
func (s *ReputationStore) Scores(ctx context.Context, runID string, agents []string) (map[string]ReputationScore, error) {
	rows, err := s.q.ReputationScoresOf(ctx, s.Store.Pool, eventdb.ReputationScoresOfParams{RunID: runID, Agents: nonNil(agents)})
	if err != nil {
		return nil, err
	}
	out := make(map[string]ReputationScore, len(rows))
	for _, r := range rows {
		out[r.Agent] = ReputationScore{Agent: r.Agent, Score: r.Score, TrustBps: int64(r.TrustBps), Rank: int(r.Rank), Percentile: r.Percentile}
	}
	return out, nil
}
