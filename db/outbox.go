package db

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/db/commondb"
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
	env.Frame, env.Registry, env.Source = w.Frame, w.Registry, w.Source
	if err := env.Validate(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if w.Guard != nil {
		if err := w.Guard(ctx, tx, w.Source, env.Type); err != nil {
			return err
		}
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("outbox: encode %s: %w", env.Type, err)
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
