-- name: SupplyAuditGet :one
SELECT frame, tokens_issued, tokens_destroyed, transit_net, total_circulating, events_applied, updated_at, compensation_issued
FROM supply_audit WHERE frame = @frame;

-- name: SupplyAuditApply :exec
-- Adds one batch's terms (single writer: the consumer).
INSERT INTO supply_audit (frame, tokens_issued, tokens_destroyed, transit_net, total_circulating, events_applied, updated_at, compensation_issued)
VALUES (@frame, @issued, @destroyed, @transit_net, @circulating, @events, @now, @compensation)
ON CONFLICT (frame) DO UPDATE SET
    tokens_issued = supply_audit.tokens_issued + excluded.tokens_issued,
    compensation_issued = supply_audit.compensation_issued + excluded.compensation_issued,
    tokens_destroyed = supply_audit.tokens_destroyed + excluded.tokens_destroyed,
    transit_net = supply_audit.transit_net + excluded.transit_net,
    total_circulating = supply_audit.total_circulating + excluded.total_circulating,
    events_applied = supply_audit.events_applied + excluded.events_applied,
    updated_at = excluded.updated_at;

-- name: BalancesUpdate :execrows
-- Netted deltas of one batch added to the existing rows, keys sorted by
-- the caller; in place, HOT (the key never changes, and at fillfactor 40
-- every row of a page has room for its new version). When fewer rows than
-- keys were updated, BalancesInsertMissing adds the new keys. Two plain
-- statements instead of one UPDATE … RETURNING feeding an anti-join
-- INSERT: about 40% less time for 10,000 keys, and the INSERT only runs
-- when an account is new. An upsert per key cost a speculative insertion
-- each, 2-3x the update. Safe without ON CONFLICT because the projection
-- phase has one writer at a time (the Applier's lock and the ingest
-- advisory lock).
UPDATE projection_balances AS p SET balance = p.balance + v.d
FROM (SELECT unnest(@accounts::text[]) AS a, unnest(@buckets::text[]) AS b, unnest(@deltas::bigint[]) AS d) AS v
WHERE p.account = v.a AND p.bucket = v.b;

-- name: BalancesInsertMissing :exec
-- The keys of the batch that had no row (run after BalancesUpdate in the
-- same transaction, so every other key has one).
INSERT INTO projection_balances (account, bucket, balance)
SELECT v.a, v.b, v.d
FROM (SELECT unnest(@accounts::text[]) AS a, unnest(@buckets::text[]) AS b, unnest(@deltas::bigint[]) AS d) AS v
WHERE NOT EXISTS (SELECT 1 FROM projection_balances AS p WHERE p.account = v.a AND p.bucket = v.b);

-- name: BalanceGet :one
SELECT balance FROM projection_balances WHERE account = @account AND bucket = @bucket;

-- name: BalancesList :many
SELECT account, bucket, balance FROM projection_balances ORDER BY account, bucket;

-- name: SourceProgressList :many
SELECT registry, source, hwm, max_seen, pending, pending_base, pending_bits, hwm_moved_at, updated_at FROM source_progress ORDER BY registry, source;

-- name: SourceProgressGet :one
SELECT registry, source, hwm, max_seen, pending, pending_base, pending_bits, hwm_moved_at, updated_at
FROM source_progress WHERE registry = @registry AND source = @source;

-- name: SourceProgressUpsert :exec
INSERT INTO source_progress (registry, source, hwm, max_seen, pending, pending_base, pending_bits, hwm_moved_at, updated_at)
VALUES (@registry, @source, @hwm, @max_seen, '{}', @pending_base, @pending_bits, @hwm_moved_at, @now)
ON CONFLICT (registry, source) DO UPDATE SET
    hwm = excluded.hwm, max_seen = excluded.max_seen, pending = '{}',
    pending_base = excluded.pending_base, pending_bits = excluded.pending_bits,
    hwm_moved_at = excluded.hwm_moved_at, updated_at = excluded.updated_at;

-- name: QuarantineInsert :exec
INSERT INTO quarantine (idempotency_key, event_type, registry, source, source_seq, reason, raw, received_at)
VALUES (@idempotency_key, @event_type, @registry, @source, @source_seq, @reason, @raw, @now)
ON CONFLICT DO NOTHING;

-- name: QuarantineCount :one
SELECT count(*)::bigint FROM quarantine;

-- name: ReactorMarkProcessed :one
-- Returns a row only the first time a reactor sees a key.
INSERT INTO reactor_processed (reactor, idempotency_key, processed_at)
VALUES (@reactor, @idempotency_key, @now)
ON CONFLICT DO NOTHING
RETURNING idempotency_key;

-- name: EventCount :one
SELECT count(*)::bigint FROM events;
