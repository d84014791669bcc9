-- name: HoldInsert :exec
INSERT INTO holds (id, account_id, receiver, amount_units, status, memo, client_key, expires_at, created_at, updated_at)
VALUES (@id, @account_id, @receiver, @amount_units, 'active', @memo, @client_key, @expires_at, @now, @now);

-- name: HoldGet :one
SELECT id, account_id, receiver, amount_units, posted_units, status, memo, client_key, transfer_id, expires_at, created_at, updated_at
FROM holds WHERE id = @id;

-- name: HoldGetForUpdate :one
SELECT id, account_id, receiver, amount_units, posted_units, status, memo, client_key, transfer_id, expires_at, created_at, updated_at
FROM holds WHERE id = @id FOR UPDATE;

-- name: HoldByClientKey :one
SELECT id, account_id, receiver, amount_units, posted_units, status, memo, client_key, transfer_id, expires_at, created_at, updated_at
FROM holds WHERE account_id = @account_id AND client_key = @client_key;

-- name: HoldFinish :exec
-- Moves an active hold to its final status.
UPDATE holds
SET status = @status, posted_units = @posted_units, transfer_id = @transfer_id, updated_at = @now
WHERE id = @id AND status = 'active';

-- name: HoldsExpiredLock :many
-- Active holds past their expiry, oldest first, locked; rows another
-- transaction holds are skipped (the next sweep gets them). The hold of a
-- cross-registry transfer decided abort ('aborting') is left to its saga,
-- which voids it once the target acknowledged the abort (its client_key
-- is '#xfer:<transfer id>'; CASE keeps the cast off caller keys).
SELECT id, account_id, receiver, amount_units, posted_units, status, memo, client_key, transfer_id, expires_at, created_at, updated_at
FROM holds
WHERE status = 'active' AND expires_at <= @now
    AND NOT EXISTS (
        SELECT 1 FROM xfers AS x
        WHERE x.id = CASE WHEN holds.client_key LIKE '#xfer:%' THEN substr(holds.client_key, 7)::uuid END
            AND x.status = 'aborting')
ORDER BY expires_at, id
LIMIT @max_rows::int
FOR UPDATE SKIP LOCKED;
