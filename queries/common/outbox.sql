-- name: OutboxInsert :exec
-- Written in the same transaction as the state change it describes. A
-- duplicate idempotency key is a bug in the caller (keys derive from business
-- identity) and surfaces as a unique violation.
INSERT INTO outbox (event_id, idempotency_key, event_type, subject, occurred_at, envelope)
VALUES (@event_id, @idempotency_key, @event_type, @subject, @occurred_at, @envelope);

-- name: OutboxCountUnpublished :one
SELECT count(*)::bigint AS rows, coalesce(min(occurred_at), @now::timestamptz)::timestamptz AS oldest
FROM outbox WHERE published_at IS NULL;

-- name: OutboxGetByKey :one
SELECT id, event_id, idempotency_key, event_type, subject, occurred_at, envelope, source_seq, published_at
FROM outbox WHERE idempotency_key = @idempotency_key;
