package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/recon"
)

// ReplayRegistry is one registry's newest checkpoint compared with the
// event log alone: its TEG's logged events numbered up to the covered
// sequence number, folded from the raw bodies. It pinpoints what the
// projections cannot: an event the log does not have (MissingSeqs) and
// what the registry's balances say it carried (Differences).
type ReplayRegistry struct {
	Registry      string             `json:"registry"`
	CheckpointSeq int64              `json:"checkpoint_seq"`
	CoversSeq     int64              `json:"covers_seq"`
	Differences   []recon.Difference `json:"differences"`
	// MissingCount counts the numbers up to CoversSeq with no event in the
	// log; MissingSeqs lists the first of them.
	MissingCount int64   `json:"missing_count"`
	MissingSeqs  []int64 `json:"missing_seqs"`
}

// OK reports whether the log agrees with the registry's checkpoint.
func (r ReplayRegistry) OK() bool { return len(r.Differences) == 0 }

// maxReplayMissing bounds the missing numbers listed per registry.
const maxReplayMissing = 100

// replayReconcile compares every registry's newest logged checkpoint with
// the log, in tx's snapshot.
func replayReconcile(ctx context.Context, tx pgx.Tx) ([]ReplayRegistry, error) {
	type teg struct {
		rep     ReplayRegistry
		summary recon.Summary
		present []bool // index: seq (1..covers)
		deltas  *balanceDeltas
	}
	regs := map[string]*teg{}
	// The newest checkpoint of each registry.
	rows, err := tx.Query(ctx, `SELECT DISTINCT ON (registry) registry, source_seq, coalesce(segment_id, 0), coalesce(segment_pos, -1), envelope::text
		FROM events WHERE source = $1 AND event_type = $2 ORDER BY registry, source_seq DESC`, events.SourceTEG, events.TypeBalanceCheckpoint)
	if err != nil {
		return nil, fmt.Errorf("find checkpoints: %w", err)
	}
	type where struct {
		seg int64
		pos int32
	}
	cpAt := map[string]where{}
	cpBody := map[string][]byte{}
	for rows.Next() {
		var reg string
		var seq, seg int64
		var pos int32
		var body *string
		if err := rows.Scan(&reg, &seq, &seg, &pos, &body); err != nil {
			rows.Close()
			return nil, err
		}
		regs[reg] = &teg{rep: ReplayRegistry{Registry: reg, CheckpointSeq: seq, Differences: []recon.Difference{}, MissingSeqs: []int64{}}, deltas: newBalanceDeltas(0)}
		cpAt[reg] = where{seg, pos}
		if body != nil {
			cpBody[reg] = []byte(*body)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(regs) == 0 {
		return []ReplayRegistry{}, nil
	}
	// Where each TEG event of those registries is, and legacy bodies.
	names := make([]string, 0, len(regs))
	for r := range regs {
		names = append(names, r)
	}
	slices.Sort(names)
	type logged struct {
		reg string
		seq int64
	}
	inSegment := map[where]logged{}
	var legacy []logged
	var legacyBodies [][]byte
	rows, err = tx.Query(ctx, `SELECT registry, source_seq, coalesce(segment_id, 0), coalesce(segment_pos, -1), envelope::text
		FROM events WHERE source = $1 AND registry = ANY($2)`, events.SourceTEG, names)
	if err != nil {
		return nil, fmt.Errorf("read the registries' events: %w", err)
	}
	for rows.Next() {
		var l logged
		var w where
		var body *string
		if err := rows.Scan(&l.reg, &l.seq, &w.seg, &w.pos, &body); err != nil {
			rows.Close()
			return nil, err
		}
		if body != nil {
			legacy, legacyBodies = append(legacy, l), append(legacyBodies, []byte(*body))
		} else {
			inSegment[w] = l
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Read the bodies: the checkpoints first (their covered number decides
	// what is folded), then everything at or below it.
	dec := events.NewDecoder()
	bodies := map[where]events.Envelope{}
	err = forEachSegmentBody(ctx, tx, func(seg int64, pos int32, body []byte) error {
		w := where{seg, pos}
		if _, ok := inSegment[w]; !ok {
			return nil
		}
		var env events.Envelope
		if err := decodeEnvelope(dec, body, &env); err != nil {
			return fmt.Errorf("segment %d body %d: %w", seg, pos, err)
		}
		if len(env.Postings) > 0 || env.Type == events.TypeBalanceCheckpoint {
			bodies[w] = events.Envelope{Type: env.Type, Postings: env.Postings, Payload: env.Payload}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for reg, t := range regs {
		var env events.Envelope
		if b, ok := cpBody[reg]; ok {
			if err := decodeEnvelope(dec, b, &env); err != nil {
				return nil, err
			}
		} else {
			env = bodies[cpAt[reg]]
		}
		var cp events.BalanceCheckpoint
		if err := json.Unmarshal(env.Payload, &cp); err != nil || cp.CoversSeq >= t.rep.CheckpointSeq || cp.CoversSeq < 0 {
			return nil, fmt.Errorf("registry %s: checkpoint at seq %d is malformed", reg, t.rep.CheckpointSeq)
		}
		t.rep.CoversSeq, t.summary = cp.CoversSeq, cp.Summary
		t.present = make([]bool, cp.CoversSeq+1)
	}
	fold := func(l logged, env events.Envelope) error {
		t := regs[l.reg]
		if l.seq < 1 || l.seq > t.rep.CoversSeq {
			return nil
		}
		t.present[l.seq] = true
		for _, p := range env.Postings {
			if err := t.deltas.add(balanceKey{p.Account, p.Bucket}, p.Delta); err != nil {
				return err
			}
		}
		return nil
	}
	for w, l := range inSegment {
		if err := fold(l, bodies[w]); err != nil {
			return nil, err
		}
	}
	for i, l := range legacy {
		var env events.Envelope
		if err := decodeEnvelope(dec, legacyBodies[i], &env); err != nil {
			return nil, err
		}
		if err := fold(l, env); err != nil {
			return nil, err
		}
	}
	out := make([]ReplayRegistry, 0, len(regs))
	for _, reg := range names {
		t := regs[reg]
		rows := make([]recon.Balance, 0, t.deltas.len())
		for i, k := range t.deltas.keys {
			rows = append(rows, recon.Balance{Account: k.account, Bucket: k.bucket, Units: t.deltas.deltas[i]})
		}
		projected, err := recon.Summarize(rows)
		if err != nil {
			return nil, err
		}
		if t.rep.Differences, err = recon.Compare(t.summary, projected); err != nil {
			return nil, err
		}
		if t.rep.Differences == nil {
			t.rep.Differences = []recon.Difference{}
		}
		for s := int64(1); s <= t.rep.CoversSeq; s++ {
			if !t.present[s] {
				t.rep.MissingCount++
				if len(t.rep.MissingSeqs) < maxReplayMissing {
					t.rep.MissingSeqs = append(t.rep.MissingSeqs, s)
				}
			}
		}
		out = append(out, t.rep)
	}
	return out, nil
}

// forEachSegmentBody calls fn with every body of every segment that is not
// marked skipped, a page of segments at a time.
func forEachSegmentBody(ctx context.Context, tx pgx.Tx, fn func(seg int64, pos int32, body []byte) error) error {
	var from int64
	for {
		rows, err := tx.Query(ctx, `SELECT id, codec, events, skipped, data FROM event_segments WHERE id >= $1 ORDER BY id LIMIT $2`, from, reconSegmentPage)
		if err != nil {
			return fmt.Errorf("read segments: %w", err)
		}
		n := 0
		for rows.Next() {
			var id int64
			var codec string
			var count int32
			var skipped []int32
			var data []byte
			if err := rows.Scan(&id, &codec, &count, &skipped, &data); err != nil {
				rows.Close()
				return err
			}
			n++
			from = id + 1
			bodies, err := decodeSegment(codec, data, int(count))
			if err != nil {
				rows.Close()
				return fmt.Errorf("segment %d: %w", id, err)
			}
			skip := make([]bool, len(bodies))
			for _, p := range skipped {
				if p >= 0 && int(p) < len(skip) {
					skip[p] = true
				}
			}
			for i, b := range bodies {
				if skip[i] {
					continue
				}
				if err := fn(id, int32(i), b); err != nil {
					rows.Close()
					return err
				}
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if n < reconSegmentPage {
			return nil
		}
	}
}
