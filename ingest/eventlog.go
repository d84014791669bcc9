package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
)

// ingestLockKey is the advisory lock every Applier holds for the
// projection phase of its transactions, through the commit. There is one
// Applier per frame, but a consumer-group rebalance can briefly run two:
// the lock keeps their projection updates (updates in place, inserts of
// new rows without ON CONFLICT) one at a time. Event-log inserts need no
// lock: the primary key arbitrates, and a collision is retried.
const ingestLockKey int64 = 0x74705f6576656e74 // "tp_event"

// copyEventsSQL lists the columns in the order segmentPlan encodes them.
// (event_id, frame and subject stay NULL: they are in the body.)
const copyEventsSQL = `COPY events (idempotency_key, event_type, registry, source, source_seq, occurred_at,
	ingested_at, segment_id, segment_pos) FROM STDIN (FORMAT binary)`

const copyEventsFields = 9

type keyAt struct {
	key string
	i   int
}

// segmentPlan is what a batch writes to the event log, prepared before its
// transaction (the consumer prepares batch N+1 while batch N is written):
// the batch's events that are valid and first of their key within their
// registry, in (registry, key) order
// (the index is filled in key order), compressed into one segment, their
// log rows pre-encoded for COPY, and their postings netted.
type segmentPlan struct {
	order   []int    // indexes into items; segment position = index in order
	keys    []string // their deduplication keys (dedupKey; sorted, unique)
	segment []byte
	rows    []byte // COPY binary fields of each row, without the last three (known in the transaction)
	rowEnd  []int  // rows[rowEnd[i-1]:rowEnd[i]] is position i
	// deltas and terms project the events of order (nil: not computed).
	deltas       *balanceDeltas
	terms        auditTerms
	balanceOrder []int32 // positions of deltas' keys, in key order
	// skipped are the positions found in the log already (redeliveries):
	// they stay in the segment, marked, and get no log row.
	skipped []int32
}

// prepareSegment plans, encodes and projects the batch's new events.
func prepareSegment(items []decoded) (segmentPlan, error) {
	// Sorted by key, then arrival: the first arrival of each key leads its
	// run of repeats, which are dropped (no map of the batch's keys). The
	// keys are sorted next to their index rather than through it: the
	// comparisons then read one array instead of ~20,000 envelopes.
	sorted := make([]keyAt, 0, len(items))
	for i := range items {
		if d := &items[i]; d.reason == "" {
			if d.dk == "" {
				d.dk = dedupKey(&d.env)
			}
			sorted = append(sorted, keyAt{d.dk, i})
		}
	}
	p := segmentPlan{}
	if len(sorted) == 0 {
		return p, nil
	}
	slices.SortFunc(sorted, func(x, y keyAt) int {
		if c := strings.Compare(x.key, y.key); c != 0 {
			return c
		}
		return x.i - y.i
	})
	sorted = slices.CompactFunc(sorted, func(x, y keyAt) bool { return x.key == y.key })
	p.order, p.keys = make([]int, len(sorted)), make([]string, len(sorted))
	for n, k := range sorted {
		p.order[n], p.keys[n] = k.i, k.key
	}
	bodies := make([][]byte, len(p.order))
	for i, j := range p.order {
		bodies[i] = items[j].raw
	}
	var err error
	if p.segment, err = encodeSegment(bodies); err != nil {
		return p, err
	}
	p.encodeRows(items)
	p.deltas, p.terms = newBalanceDeltas(len(p.order)), auditTerms{}
	for _, j := range p.order {
		if err := accumulate(&items[j].env, p.deltas, &p.terms, 1); err != nil {
			// Overflow: left to the transaction, which fails the batch.
			p.deltas, p.terms = nil, auditTerms{}
			return p, nil
		}
	}
	p.balanceOrder = p.deltas.sorted()
	return p, nil
}

// encodeRows writes the COPY binary form of each row's first six fields
// (by hand: pgx's generic CopyFrom encoding was a fifth of the consumer's
// Go CPU, on the transaction's critical path).
func (p *segmentPlan) encodeRows(items []decoded) {
	p.rows = make([]byte, 0, len(p.order)*200)
	p.rowEnd = make([]int, len(p.order))
	for i, j := range p.order {
		d := &items[j]
		e := &d.env
		b := p.rows
		b = binary.BigEndian.AppendUint16(b, copyEventsFields)
		b = appendText(b, e.IdempotencyKey)
		b = appendText(b, e.Type)
		b = appendText(b, e.Registry)
		b = appendText(b, e.Source)
		b = appendInt8(b, d.seq)
		b = appendTime(b, e.OccurredAt)
		p.rows = b
		p.rowEnd[i] = len(b)
	}
}

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendInt8(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// pgEpochMicros is 2000-01-01 UTC, PostgreSQL's timestamp epoch, in Unix
// microseconds.
const pgEpochMicros = 946_684_800_000_000

func appendTime(b []byte, t time.Time) []byte {
	return appendInt8(b, t.UnixMicro()-pgEpochMicros)
}

// inserted reports the items the plan inserted, by deduplication key.
func (p *segmentPlan) inserted(items []decoded) map[string]bool {
	out := make(map[string]bool, len(p.order)-len(p.skipped))
	k := 0
	for pos, j := range p.order {
		if k < len(p.skipped) && p.skipped[k] == int32(pos) {
			k++
			continue
		}
		out[items[j].dk] = true
	}
	return out
}

// probeKeys returns the (registry, key) pairs already in the log, as
// deduplication keys, one primary-key lookup each. The planner is kept off sequential scans for it: with statistics
// from when the log was small, a cached generic plan scanned the whole log
// comparing every row with every key (measured: up to 2 s per batch at
// 60,000 events, where the lookups take milliseconds).
func probeKeys(ctx context.Context, tx pgx.Tx, registries, keys []string) ([]string, error) {
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT e.registry, e.idempotency_key FROM unnest($1::text[], $2::text[]) AS k (registry, key)
		JOIN events AS e ON e.registry = k.registry AND e.idempotency_key = k.key`, registries, keys)
	if err != nil {
		return nil, err
	}
	existing, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var e events.Envelope
		err := r.Scan(&e.Registry, &e.IdempotencyKey)
		return dedupKey(&e), err
	})
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = on`); err != nil {
		return nil, err
	}
	return existing, nil
}

// errKeyCollision: an event the probe skipped (its source sequence number
// was new) has a key already in the log. The batch is written again with
// every key probed.
var errKeyCollision = errors.New("event key already in the log under another sequence number")

// insertEvents writes the plan's events to the log: it probes for keys
// already there (redeliveries) and marks them skipped, taking their
// postings back out of the netted deltas, stores the segment and COPYs
// the rows of the rest. It returns the plan as applied.
//
// Only events whose source sequence number was seen before (seen reports
// it, by index in items) are probed, unless probeAll. Every event in the log had its sequence
// number recorded in its source's progress in the same transaction, so an
// event with a new sequence number is new unless its source reused a key
// (a bug upstream): then the primary key refuses the COPY, and the caller
// gets errKeyCollision and writes the batch again with probeAll. Probing
// every key cost a fifth of the writer's time per batch.
//
// Events inFlight reports (by index in items) are being written by an
// earlier batch still in flight: they are skipped like logged ones. If
// that batch commits, they are in the log; if it fails, the consumer
// commits no offset from it onwards, so this batch's records are
// delivered again and then find the log without them.
func insertEvents(ctx context.Context, tx pgx.Tx, items []decoded, plan segmentPlan, now time.Time, seen, inFlight func(int) bool, probeAll bool) (segmentPlan, error) {
	plan.skipped = nil
	if len(plan.order) == 0 {
		return plan, nil
	}
	var registries, keys []string
	for _, j := range plan.order {
		if probeAll || seen(j) {
			registries, keys = append(registries, items[j].env.Registry), append(keys, items[j].env.IdempotencyKey)
		}
	}
	var existing []string
	if len(keys) > 0 {
		var err error
		if existing, err = probeKeys(ctx, tx, registries, keys); err != nil {
			return plan, fmt.Errorf("probe event keys: %w", err)
		}
	}
	flying := false
	for _, j := range plan.order {
		if inFlight(j) {
			flying = true
			break
		}
	}
	if len(existing) > 0 || flying {
		known := make(map[string]struct{}, len(existing))
		for _, k := range existing {
			known[k] = struct{}{}
		}
		var deltas *balanceDeltas
		terms := plan.terms
		if plan.deltas != nil {
			deltas = plan.deltas.clone() // the plan is reused if the batch is written again
		}
		for pos, j := range plan.order {
			if _, ok := known[items[j].dk]; !ok && !inFlight(j) {
				continue
			}
			plan.skipped = append(plan.skipped, int32(pos))
			if deltas != nil && accumulate(&items[j].env, deltas, &terms, -1) != nil {
				deltas = nil // recomputed from scratch by the caller
			}
		}
		plan.deltas, plan.terms = deltas, terms
		switch {
		case deltas == nil:
			plan.terms = auditTerms{}
		case !deltas.shared:
			// Taking events back out added a key (it cannot, they were
			// netted in): order the keys again rather than trust that.
			plan.balanceOrder = deltas.sorted()
		}
		if len(plan.skipped) == len(plan.order) {
			return plan, nil
		}
	}
	var segID int64
	if err := tx.QueryRow(ctx, `INSERT INTO event_segments (codec, events, skipped, data, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		SegmentCodec, len(plan.order), append([]int32{}, plan.skipped...), plan.segment, now).Scan(&segID); err != nil {
		return plan, fmt.Errorf("insert segment: %w", err)
	}
	n := len(plan.order) - len(plan.skipped)
	buf := make([]byte, 0, 19+len(plan.rows)+n*48+2)
	buf = append(buf, "PGCOPY\n\xff\r\n\x00"...)
	buf = binary.BigEndian.AppendUint32(buf, 0) // flags
	buf = binary.BigEndian.AppendUint32(buf, 0) // header extension length
	k, from := 0, 0
	ingested := now.UnixMicro() - pgEpochMicros
	for pos := range plan.order {
		to := plan.rowEnd[pos]
		if k < len(plan.skipped) && plan.skipped[k] == int32(pos) {
			k++
			from = to
			continue
		}
		buf = append(buf, plan.rows[from:to]...)
		buf = appendInt8(buf, ingested)
		buf = appendInt8(buf, segID)
		buf = binary.BigEndian.AppendUint32(buf, 4)
		buf = binary.BigEndian.AppendUint32(buf, uint32(pos))
		from = to
	}
	buf = binary.BigEndian.AppendUint16(buf, 0xffff) // trailer: -1
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), copyEventsSQL)
	if err != nil {
		if pe := (*pgconn.PgError)(nil); !probeAll && errors.As(err, &pe) && pe.Code == db.SQLStateUnique && pe.ConstraintName == "events_pkey" {
			return plan, errKeyCollision
		}
		return plan, fmt.Errorf("copy events: %w", err)
	}
	if tag.RowsAffected() != int64(n) {
		return plan, fmt.Errorf("copy events: %d rows written, want %d", tag.RowsAffected(), n)
	}
	return plan, nil
}
