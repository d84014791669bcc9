-- +goose Up
-- No query looks outbox rows up by event_id (UUIDv7, unique by
-- construction; the EventStore deduplicates by idempotency key, which keeps
-- its unique index). The index cost an entry on every insert and, since the
-- relay's sequencing update cannot be HOT, another on every sequencing.
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_key;

-- +goose Down
ALTER TABLE outbox ADD CONSTRAINT outbox_event_id_key UNIQUE (event_id);
