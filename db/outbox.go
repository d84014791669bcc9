package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/db/internal/commondb"
	"github.com/theprotocol-dev/theprotocol/events"
)

// EmissionGuard decides whether this database's source may author an event
// type; the EventStore issue wires the emission-policy table in. A nil guard
// allows everything.
type EmissionGuard func(ctx context.Context, tx pgx.Tx, source, eventType string) error

// OutboxWriter appends events to the outbox inside the caller's transaction
// (SPEC §5: the state change and its events commit together or not at all).
type OutboxWriter struct {
	Frame    string
	Registry string
	Source   string
	Guard    EmissionGuard
	q        *commondb.Queries
}

// NewOutboxWriter returns a writer stamping frame, registry and source on
// every envelope.
func NewOutboxWriter(frame, registry, source string, guard EmissionGuard) *OutboxWriter {
	return &OutboxWriter{Frame: frame, Registry: registry, Source: source, Guard: guard, q: commondb.New()}
}

// Write validates env, fills in frame/registry/source and inserts it in tx.
// A duplicate idempotency key is returned as an error: keys derive from
// business identity, so a duplicate means the caller is re-applying a state
// change it should have detected first.
func (w *OutboxWriter) Write(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	env, raw, err := w.prepare(ctx, tx, env, nil)
	if err != nil {
		return err
	}
	err = w.q.OutboxInsert(ctx, tx, commondb.OutboxInsertParams{
		EventID:        env.EventID,
		IdempotencyKey: env.IdempotencyKey,
		EventType:      env.Type,
		Subject:        env.Subject,
		OccurredAt:     env.OccurredAt,
		Envelope:       raw,
	})
	if err != nil {
		return fmt.Errorf("outbox: insert %s (%s): %w", env.Type, env.IdempotencyKey, err)
	}
	return nil
}

// WriteBatch is Write for many events in one INSERT (group-commit writers):
// every event gets the same stamping, validation and emission check.
func (w *OutboxWriter) WriteBatch(ctx context.Context, tx pgx.Tx, envs []events.Envelope) error {
	switch len(envs) {
	case 0:
		return nil
	case 1:
		return w.Write(ctx, tx, envs[0])
	}
	p := commondb.OutboxInsertBatchParams{
		EventIds:        make([][]byte, len(envs)),
		IdempotencyKeys: make([]string, len(envs)),
		EventTypes:      make([]string, len(envs)),
		Subjects:        make([]string, len(envs)),
		OccurredAts:     make([]time.Time, len(envs)),
		Envelopes:       make([]string, len(envs)),
	}
	ids := make([]byte, 16*len(envs)) // one allocation for every id
	checked := map[string]bool{}      // the guard is per type; check each once
	for i, env := range envs {
		env, raw, err := w.prepare(ctx, tx, env, checked)
		if err != nil {
			return err
		}
		p.EventIds[i] = ids[16*i : 16*i+16 : 16*i+16]
		copy(p.EventIds[i], env.EventID[:])
		p.IdempotencyKeys[i], p.EventTypes[i] = env.IdempotencyKey, env.Type
		p.Subjects[i], p.OccurredAts[i], p.Envelopes[i] = env.Subject, env.OccurredAt, string(raw)
	}
	if err := w.q.OutboxInsertBatch(ctx, tx, p); err != nil {
		return fmt.Errorf("outbox: insert batch of %d: %w", len(envs), err)
	}
	return nil
}

// prepare stamps frame/registry/source, validates, applies the emission
// guard (once per type when checked is non-nil) and encodes env.
func (w *OutboxWriter) prepare(ctx context.Context, tx pgx.Tx, env events.Envelope, checked map[string]bool) (events.Envelope, []byte, error) {
	env.Frame, env.Registry, env.Source = w.Frame, w.Registry, w.Source
	if err := env.Validate(); err != nil {
		return env, nil, fmt.Errorf("outbox: %w", err)
	}
	if w.Guard != nil && !checked[env.Type] {
		if err := w.Guard(ctx, tx, w.Source, env.Type); err != nil {
			return env, nil, err
		}
		if checked != nil {
			checked[env.Type] = true
		}
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return env, nil, fmt.Errorf("outbox: encode %s: %w", env.Type, err)
	}
	return env, raw, nil
}
