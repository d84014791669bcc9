-- name: AccountInsert :execrows
-- Creates an account; 0 rows when it already exists (OpenAccount is idempotent).
INSERT INTO accounts (id, kind, created_at) VALUES (@id, @kind, @now)
ON CONFLICT (id) DO NOTHING;

-- name: AccountGet :one
SELECT id, kind, created_at FROM accounts WHERE id = @id;

-- name: BalanceEnsure :exec
-- Creates the (account, bucket) row at zero if missing.
INSERT INTO balances (account_id, bucket, units, held_units, updated_at)
VALUES (@account_id, @bucket, 0, 0, @now)
ON CONFLICT (account_id, bucket) DO NOTHING;

-- name: BalancesByAccount :many
SELECT account_id, bucket, units, held_units, updated_at
FROM balances WHERE account_id = @account_id ORDER BY bucket;
