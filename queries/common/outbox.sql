-- Outbox (db/migrations/common 00001, 00003, 00008, 00010, 00011). Writers insert
-- the row and queue its id; the single relay numbers queued rows in
-- batches (outbox_seq_batches: ids[k] has seq first_seq + k − 1) and
-- publishes them in sequence order. An outbox row is never updated.

-- name: OutboxInsert :exec
-- Written in the same transaction as the state change it describes. A
-- duplicate idempotency key is a bug in the caller (keys derive from business
-- identity) and surfaces as a unique violation.
WITH o AS (
    INSERT INTO outbox (event_id, idempotency_key, event_type, subject, occurred_at, envelope)
    VALUES (@event_id, @idempotency_key, @event_type, @subject, @occurred_at, @envelope)
    RETURNING id
)
INSERT INTO outbox_queue (id) SELECT id FROM o;

-- name: OutboxCountUnpublished :one
-- Rows not yet sequenced plus sequenced rows above the published mark; the
-- oldest is the older of the first queued row and the next row to publish.
SELECT ((SELECT count(*) FROM outbox_queue) + (SELECT s.next_seq - 1 - s.published_seq FROM outbox_relay_state AS s))::bigint AS rows,
    least(
        coalesce((SELECT o.occurred_at FROM outbox_queue AS q JOIN outbox AS o ON o.id = q.id ORDER BY q.id LIMIT 1), @now::timestamptz),
        coalesce((SELECT o.occurred_at FROM outbox_seq_batches AS b JOIN outbox AS o ON o.id = b.ids[(SELECT published_seq + 1 FROM outbox_relay_state) - b.first_seq + 1]
                  WHERE b.first_seq <= (SELECT published_seq + 1 FROM outbox_relay_state)
                  ORDER BY b.first_seq DESC LIMIT 1), @now::timestamptz)
    )::timestamptz AS oldest;

-- name: OutboxGetByKey :one
SELECT id, event_id, idempotency_key, event_type, subject, occurred_at, envelope, published_at
FROM outbox WHERE idempotency_key = @idempotency_key;

-- name: OutboxRelayNextSeq :one
SELECT next_seq FROM outbox_relay_state FOR UPDATE;

-- name: OutboxRelaySetNextSeq :exec
UPDATE outbox_relay_state SET next_seq = @next_seq;

-- name: OutboxClaimQueued :many
-- Takes up to max_rows queued (committed, unsequenced) rows off the queue,
-- lowest ids first (RETURNING order is unspecified: the caller sorts). FOR
-- UPDATE keeps a second relay honest: it waits, then skips what this one
-- claimed.
DELETE FROM outbox_queue
WHERE id IN (SELECT q.id FROM outbox_queue AS q ORDER BY q.id LIMIT @max_rows FOR UPDATE)
RETURNING id;

-- name: OutboxByIDRanges :many
-- What the relay publishes of the rows it just numbered, read as id ranges
-- (runs of the claimed ids; the caller drops rows it did not claim): one
-- primary-key range scan per run instead of a probe per id (joined to the
-- DELETE … RETURNING above, or as id = ANY(…) under a generic plan, the
-- planner scanned the whole outbox on every pass).
SELECT o.id, o.subject, o.envelope
FROM (SELECT unnest(@los::bigint[]) AS lo, unnest(@his::bigint[]) AS hi) AS r
CROSS JOIN LATERAL (SELECT x.id, x.subject, x.envelope FROM outbox AS x WHERE x.id BETWEEN r.lo AND r.hi) AS o;

-- name: OutboxSeqBatchInsert :exec
-- Records one sequencing pass: ids[k] gets first_seq + k − 1.
INSERT INTO outbox_seq_batches (first_seq, last_seq, ids, sequenced_at)
VALUES (@first_seq, @last_seq, @ids::bigint[], @now);

-- name: OutboxUnpublished :many
-- The next sequenced rows above the published mark, in sequence order.
-- Only batches that can hold one of the next max_rows numbers are read:
-- from the one holding published_seq + 1 (an index probe) on. The bounds
-- are scalar subqueries so that they are index range bounds.
SELECT (b.first_seq + u.ord - 1)::bigint AS source_seq, o.subject, o.envelope
FROM outbox_seq_batches AS b
CROSS JOIN LATERAL unnest(b.ids) WITH ORDINALITY AS u(id, ord)
JOIN outbox AS o ON o.id = u.id
WHERE b.first_seq >= (SELECT coalesce(max(x.first_seq), 0) FROM outbox_seq_batches AS x
                      WHERE x.first_seq <= (SELECT published_seq + 1 FROM outbox_relay_state))
  AND b.first_seq <= (SELECT published_seq FROM outbox_relay_state) + sqlc.arg(max_rows)::int
  AND b.first_seq + u.ord - 1 > (SELECT published_seq FROM outbox_relay_state)
ORDER BY 1 LIMIT sqlc.arg(max_rows)::int;

-- name: OutboxMarkPublished :exec
-- Every row up to seq is acknowledged by the broker (never moves back).
UPDATE outbox_relay_state SET published_seq = greatest(published_seq, sqlc.arg(seq)::bigint);

-- name: OutboxRange :many
-- Already-published rows for a re-publish after the EventStore reported a
-- gap (Kafka lost them), bounded like OutboxUnpublished.
SELECT (b.first_seq + u.ord - 1)::bigint AS source_seq, o.subject, o.envelope
FROM outbox_seq_batches AS b
CROSS JOIN LATERAL unnest(b.ids) WITH ORDINALITY AS u(id, ord)
JOIN outbox AS o ON o.id = u.id
WHERE b.first_seq >= (SELECT coalesce(max(x.first_seq), 0) FROM outbox_seq_batches AS x WHERE x.first_seq <= sqlc.arg(from_seq)::bigint)
  AND b.first_seq <= sqlc.arg(from_seq)::bigint + sqlc.arg(max_rows)::int - 1
  AND b.first_seq + u.ord - 1 >= sqlc.arg(from_seq)::bigint
  AND b.first_seq + u.ord - 1 <= least(sqlc.arg(to_seq)::bigint, (SELECT published_seq FROM outbox_relay_state))
ORDER BY 1 LIMIT sqlc.arg(max_rows)::int;

-- name: OutboxMaxPublishedSeq :one
SELECT published_seq FROM outbox_relay_state;

-- name: OutboxDeletePublishedBefore :execrows
-- Retention: whole sequencing batches numbered before the cutoff AND
-- acknowledged by the EventStore (last_seq <= its high-water mark, so
-- published) are deleted with their rows, oldest first: the first batch,
-- and further ones while the rows stay within max_rows. Batches are
-- numbered in time order, so only the oldest need looking at.
WITH oldest AS (
    SELECT first_seq, sum(last_seq - first_seq + 1) OVER (ORDER BY first_seq) AS upto
    FROM (SELECT first_seq, last_seq FROM outbox_seq_batches ORDER BY first_seq LIMIT 1000) AS f
), doomed AS (
    DELETE FROM outbox_seq_batches AS b USING oldest
    WHERE b.first_seq = oldest.first_seq
      AND (oldest.upto <= sqlc.arg(max_rows)::bigint OR oldest.first_seq = (SELECT min(first_seq) FROM oldest))
      AND b.last_seq <= sqlc.arg(acked_seq)::bigint AND b.sequenced_at < sqlc.arg(cutoff)::timestamptz
    RETURNING b.ids
)
DELETE FROM outbox WHERE id IN (SELECT unnest(doomed.ids) FROM doomed);

-- name: OutboxInsertBatch :exec
-- The bulk form of OutboxInsert for group-commit writers: one statement
-- for all events of a batch, same columns and constraints. Event ids travel
-- as 16-byte bytea: encoding a uuid[] parameter measured ~15 % slower on the
-- ledger's group-commit path.
WITH o AS (
    INSERT INTO outbox (event_id, idempotency_key, event_type, subject, occurred_at, envelope)
    SELECT encode(u.event_id, 'hex')::uuid, u.idempotency_key, u.event_type, u.subject, u.occurred_at, u.envelope::json
    FROM (
        SELECT unnest(@event_ids::bytea[]) AS event_id,
            unnest(@idempotency_keys::text[]) AS idempotency_key,
            unnest(@event_types::text[]) AS event_type,
            unnest(@subjects::text[]) AS subject,
            unnest(@occurred_ats::timestamptz[]) AS occurred_at,
            unnest(@envelopes::text[]) AS envelope) AS u
    RETURNING id
)
INSERT INTO outbox_queue (id) SELECT id FROM o;
