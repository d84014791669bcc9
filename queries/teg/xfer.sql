-- Cross-registry transfers (db/migrations/teg/00103_cross_registry.sql).

-- name: XferInsert :exec
INSERT INTO xfers (id, sender, receiver, target_registry, amount_units, memo, client_key, hold_id, status, created_at, updated_at)
VALUES (@id, @sender, @receiver, @target_registry, @amount_units, @memo, @client_key, @hold_id, 'pending', @now, @now);

-- name: XferByClientKey :one
SELECT id, sender, receiver, target_registry, amount_units, fee_units, memo, client_key, hold_id, status, reason, workflow_id, created_at, updated_at
FROM xfers WHERE sender = @sender AND client_key = @client_key;

-- name: XferGet :one
SELECT id, sender, receiver, target_registry, amount_units, fee_units, memo, client_key, hold_id, status, reason, workflow_id, created_at, updated_at
FROM xfers WHERE id = @id;

-- name: XfersLock :many
-- The named transfers, locked in id order (the one lock order of xfers).
SELECT id, sender, receiver, target_registry, amount_units, fee_units, memo, client_key, hold_id, status, reason, workflow_id, created_at, updated_at
FROM xfers WHERE id = ANY(@ids::uuid[]) ORDER BY id FOR UPDATE;

-- name: XfersGet :many
SELECT id, sender, receiver, target_registry, amount_units, fee_units, memo, client_key, hold_id, status, reason, workflow_id, created_at, updated_at
FROM xfers WHERE id = ANY(@ids::uuid[]) ORDER BY id;

-- name: XfersUpdate :exec
-- Sets each named transfer's status, reason and fee.
UPDATE xfers AS x
SET status = u.status, reason = u.reason, fee_units = u.fee_units, updated_at = @now
FROM (
    SELECT unnest(@ids::uuid[]) AS id,
        unnest(@statuses::text[]) AS status,
        unnest(@reasons::text[]) AS reason,
        unnest(@fees::bigint[]) AS fee_units) AS u
WHERE x.id = u.id;

-- name: XfersSetWorkflow :exec
UPDATE xfers SET workflow_id = @workflow_id WHERE id = ANY(@ids::uuid[]);

-- name: XfersUnsettled :many
-- Transfers without a final outcome created before @before, oldest first:
-- crash recovery restarts their settlement (an aborting one still needs
-- the target's acknowledgement and its hold's void).
SELECT id, sender, receiver, target_registry, amount_units, fee_units, memo, client_key, hold_id, status, reason, workflow_id, created_at, updated_at
FROM xfers WHERE status IN ('pending', 'committing', 'aborting') AND created_at < @before
ORDER BY created_at LIMIT @max_rows::int;

-- name: XferHoldsLock :many
-- Holds locked in id order.
SELECT id, account_id, receiver, amount_units, posted_units, status, memo, client_key, transfer_id, expires_at, created_at, updated_at
FROM holds WHERE id = ANY(@ids::uuid[]) ORDER BY id FOR UPDATE;

-- name: XferHoldsFinish :exec
-- Moves active holds to their final status (the nil UUID: no transfer).
UPDATE holds AS h
SET status = u.status, posted_units = u.posted_units, transfer_id = nullif(u.transfer_id, '00000000-0000-0000-0000-000000000000'::uuid), updated_at = @now
FROM (
    SELECT unnest(@ids::uuid[]) AS id,
        unnest(@statuses::text[]) AS status,
        unnest(@posted_units::bigint[]) AS posted_units,
        unnest(@transfer_ids::uuid[]) AS transfer_id) AS u
WHERE h.id = u.id AND h.status = 'active';

-- name: XferPreparesInsert :exec
-- Records prepares; an ID already recorded keeps its first row (idempotent
-- by transfer ID).
INSERT INTO xfer_prepares (transfer_id, source_registry, sender, receiver, amount_units, fee_units, fee_bps, memo, status, reason, created_at, updated_at)
SELECT u.id, @source_registry, u.sender, u.receiver, u.amount, u.fee, u.fee_bps, u.memo, u.status, u.reason, @now, @now
FROM (
    SELECT unnest(@ids::uuid[]) AS id,
        unnest(@senders::text[]) AS sender,
        unnest(@receivers::text[]) AS receiver,
        unnest(@amounts::bigint[]) AS amount,
        unnest(@fees::bigint[]) AS fee,
        unnest(@fee_bps::int[]) AS fee_bps,
        unnest(@memos::text[]) AS memo,
        unnest(@statuses::text[]) AS status,
        unnest(@reasons::text[]) AS reason) AS u
ON CONFLICT (transfer_id) DO NOTHING;

-- name: XferPreparesGet :many
SELECT transfer_id, source_registry, sender, receiver, amount_units, fee_units, fee_bps, memo, status, reason, credit_transfer_id, created_at, updated_at
FROM xfer_prepares WHERE transfer_id = ANY(@ids::uuid[]) ORDER BY transfer_id;

-- name: XferPreparesLock :many
SELECT transfer_id, source_registry, sender, receiver, amount_units, fee_units, fee_bps, memo, status, reason, credit_transfer_id, created_at, updated_at
FROM xfer_prepares WHERE transfer_id = ANY(@ids::uuid[]) ORDER BY transfer_id FOR UPDATE;

-- name: XferPreparesUpdate :exec
UPDATE xfer_prepares AS p
SET status = u.status, credit_transfer_id = nullif(u.credit_id, '00000000-0000-0000-0000-000000000000'::uuid), updated_at = @now
FROM (
    SELECT unnest(@ids::uuid[]) AS id,
        unnest(@statuses::text[]) AS status,
        unnest(@credit_ids::uuid[]) AS credit_id) AS u
WHERE p.transfer_id = u.id;

-- name: XferPreparesStale :many
-- Prepares still open that were recorded before @before, oldest first.
SELECT transfer_id, source_registry, sender, receiver, amount_units, fee_units, fee_bps, memo, status, reason, credit_transfer_id, created_at, updated_at
FROM xfer_prepares WHERE status = 'prepared' AND created_at < @before
ORDER BY created_at LIMIT @max_rows::int;

-- name: XferAccountsExisting :many
-- Which of the named accounts exist here.
SELECT id, kind FROM accounts WHERE id = ANY(@ids::text[]);

-- name: XfersByClientKeys :many
-- The already-accepted transfers among (sender, client_key) pairs: replays
-- (one unique-index probe per pair).
SELECT x.id, x.sender, x.receiver, x.target_registry, x.amount_units, x.fee_units, x.memo, x.client_key, x.hold_id, x.status, x.reason, x.workflow_id, x.created_at, x.updated_at
FROM (
    SELECT unnest(@senders::text[]) AS sender,
        unnest(@client_keys::text[]) AS client_key
) AS k
CROSS JOIN LATERAL (
    SELECT y.id, y.sender, y.receiver, y.target_registry, y.amount_units, y.fee_units, y.memo, y.client_key, y.hold_id, y.status, y.reason, y.workflow_id, y.created_at, y.updated_at
    FROM xfers AS y WHERE y.sender = k.sender AND y.client_key = k.client_key
    LIMIT 1
) AS x;

-- name: XferHoldsInsert :exec
-- Bulk insert of the holds of accepted cross-registry transfers.
INSERT INTO holds (id, account_id, receiver, amount_units, status, memo, client_key, expires_at, created_at, updated_at)
SELECT u.id, u.account_id, u.receiver, u.amount, 'active', u.memo, u.client_key, @expires_at, @now, @now
FROM (
    SELECT unnest(@ids::uuid[]) AS id,
        unnest(@account_ids::text[]) AS account_id,
        unnest(@receivers::text[]) AS receiver,
        unnest(@amounts::bigint[]) AS amount,
        unnest(@memos::text[]) AS memo,
        unnest(@client_keys::text[]) AS client_key) AS u;

-- name: XfersInsert :exec
-- Bulk insert of accepted (pending) cross-registry transfers.
INSERT INTO xfers (id, sender, receiver, target_registry, amount_units, memo, client_key, hold_id, status, created_at, updated_at)
SELECT u.id, u.sender, u.receiver, u.target, u.amount, u.memo, u.client_key, u.hold_id, 'pending', @now, @now
FROM (
    SELECT unnest(@ids::uuid[]) AS id,
        unnest(@senders::text[]) AS sender,
        unnest(@receivers::text[]) AS receiver,
        unnest(@targets::text[]) AS target,
        unnest(@amounts::bigint[]) AS amount,
        unnest(@memos::text[]) AS memo,
        unnest(@client_keys::text[]) AS client_key,
        unnest(@hold_ids::uuid[]) AS hold_id) AS u;
