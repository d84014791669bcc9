-- name: SupplyAuditGet :one
SELECT frame, tokens_issued, tokens_destroyed, transit_net, total_circulating, events_applied, updated_at
FROM supply_audit WHERE frame = @frame;

-- name: SupplyAuditApply :exec
-- Adds one batch's terms (single writer: the consumer).
INSERT INTO supply_audit (frame, tokens_issued, tokens_destroyed, transit_net, total_circulating, events_applied, updated_at)
VALUES (@frame, @issued, @destroyed, @transit_net, @circulating, @events, @now)
ON CONFLICT (frame) DO UPDATE SET
    tokens_issued = supply_audit.tokens_issued + excluded.tokens_issued,
    tokens_destroyed = supply_audit.tokens_destroyed + excluded.tokens_destroyed,
    transit_net = supply_audit.transit_net + excluded.transit_net,
    total_circulating = supply_audit.total_circulating + excluded.total_circulating,
    events_applied = supply_audit.events_applied + excluded.events_applied,
    updated_at = excluded.updated_at;

-- name: BalancesApply :exec
-- Netted deltas of one batch, keys sorted by the caller. Existing rows are
-- updated in place (HOT: the key never changes, the table keeps free space
-- per page) and only new keys inserted: an upsert per key cost a
-- speculative insertion each, 2-3x the update. Safe without ON CONFLICT
-- because the consumer is the only writer and holds the ingest lock.
WITH v AS (
    SELECT unnest(@accounts::text[]) AS a, unnest(@buckets::text[]) AS b, unnest(@deltas::bigint[]) AS d
), upd AS (
    UPDATE projection_balances AS p SET balance = p.balance + v.d
    FROM v WHERE p.account = v.a AND p.bucket = v.b
    RETURNING p.account, p.bucket
)
INSERT INTO projection_balances (account, bucket, balance)
SELECT v.a, v.b, v.d FROM v
WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.account = v.a AND upd.bucket = v.b);

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
