package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/events"
)

// TailedEvent is one event of the log as a live view shows it: where it
// sits in the log (segment, position: the stream's cursor) and the
// envelope's visible fields. The payload is kept only when small, so a
// viewer cannot be made to ship large bodies.
type TailedEvent struct {
	Segment        int64           `json:"segment"`
	Pos            int             `json:"pos"`
	Type           string          `json:"type"`
	IdempotencyKey string          `json:"idempotency_key"`
	Registry       string          `json:"registry"`
	Source         string          `json:"source"`
	Subject        string          `json:"subject"`
	OccurredAt     time.Time       `json:"occurred_at"`
	Postings       int             `json:"postings"`
	Payload        json.RawMessage `json:"payload,omitempty"`
}

// MaxTailedPayload bounds the payload a tailed event carries.
const MaxTailedPayload = 4096

// LastSegment is the newest segment's id (0 when the log is empty).
func LastSegment(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var id int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM event_segments`).Scan(&id); err != nil {
		return 0, fmt.Errorf("last segment: %w", err)
	}
	return id, nil
}

// Tail reads the events of at most maxSegments segments after segment
// `after`, in log order, and the id of the last segment read (after when
// none). Segments are the log's append order (one per ingest batch, ids
// from a sequence), so a reader resumes exactly where it stopped. Rows
// ingested before segments existed are not tailed.
func Tail(ctx context.Context, pool *pgxpool.Pool, after int64, maxSegments int) ([]TailedEvent, int64, error) {
	rows, err := pool.Query(ctx, `SELECT id, codec, events, skipped, data FROM event_segments WHERE id > $1 ORDER BY id LIMIT $2`, after, maxSegments)
	if err != nil {
		return nil, after, fmt.Errorf("tail segments: %w", err)
	}
	defer rows.Close()
	last := after
	var out []TailedEvent
	dec := events.NewDecoder()
	for rows.Next() {
		var id int64
		var codec string
		var n int32
		var skipped []int32
		var data []byte
		if err := rows.Scan(&id, &codec, &n, &skipped, &data); err != nil {
			return nil, after, fmt.Errorf("tail segments: %w", err)
		}
		bodies, err := decodeSegment(codec, data, int(n))
		if err != nil {
			return nil, after, fmt.Errorf("tail segment %d: %w", id, err)
		}
		skip := make(map[int32]bool, len(skipped))
		for _, p := range skipped {
			skip[p] = true
		}
		for pos, b := range bodies {
			if skip[int32(pos)] {
				continue
			}
			var env events.Envelope
			if err := decodeEnvelope(dec, b, &env); err != nil {
				return nil, after, fmt.Errorf("tail segment %d: undecodable body at %d: %w", id, pos, err)
			}
			ev := TailedEvent{
				Segment: id, Pos: pos, Type: env.Type, IdempotencyKey: env.IdempotencyKey,
				Registry: env.Registry, Source: env.Source,
				Subject: env.Subject, OccurredAt: env.OccurredAt, Postings: len(env.Postings),
			}
			if len(env.Payload) <= MaxTailedPayload {
				ev.Payload = append(json.RawMessage(nil), env.Payload...)
			}
			out = append(out, ev)
		}
		last = id
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("tail segments: %w", err)
	}
	return out, last, nil
}
