-- name: OutboxInsertBatch :exec
-- The group-commit writer's bulk form of OutboxInsert (queries/common): one
-- statement for all events of a batch, same columns and constraints. Event
-- ids are 16-byte bytea (see JournalEntriesInsertTransfers).
INSERT INTO outbox (event_id, idempotency_key, event_type, subject, occurred_at, envelope)
SELECT encode(u.event_id, 'hex')::uuid, u.idempotency_key, u.event_type, u.subject, @occurred_at, u.envelope::jsonb
FROM (
    SELECT unnest(@event_ids::bytea[]) AS event_id,
        unnest(@idempotency_keys::text[]) AS idempotency_key,
        unnest(@event_types::text[]) AS event_type,
        unnest(@subjects::text[]) AS subject,
        unnest(@envelopes::text[]) AS envelope) AS u;
