-- name: BootstrapTokenInsert :one
INSERT INTO bootstrap_tokens (id, token_hash, developer_id, organisation_id, created_at, expires_at)
VALUES (@id, @token_hash, @developer_id, sqlc.narg(organisation_id), @now, @expires_at)
RETURNING id, developer_id, organisation_id, created_at, expires_at;

-- name: BootstrapTokenPeek :one
-- Read-only pre-check before the ledger call; the consuming UPDATE below is
-- what decides.
SELECT id, developer_id, organisation_id, created_at, expires_at
FROM bootstrap_tokens
WHERE token_hash = @token_hash AND consumed_at IS NULL AND expires_at > @now;

-- name: BootstrapTokenConsume :one
-- Consumes a token exactly once: concurrent consumers serialise on the row
-- lock and every one but the first re-checks consumed_at and gets no row.
UPDATE bootstrap_tokens
SET consumed_at = sqlc.arg(now)::timestamptz, consumed_by = sqlc.arg(consumed_by)::text
WHERE token_hash = @token_hash AND consumed_at IS NULL AND expires_at > @now
RETURNING id, developer_id, organisation_id, created_at, expires_at;

-- name: BootstrapTokenSweep :execrows
-- Deletes expired, never-consumed tokens; bounded per call. Consumed tokens
-- stay: agents reference them.
DELETE FROM bootstrap_tokens AS b
USING (
    SELECT o.id FROM bootstrap_tokens AS o
    WHERE o.expires_at < @now AND o.consumed_at IS NULL
    ORDER BY o.expires_at
    LIMIT sqlc.arg(max_rows)::int
) AS old
WHERE b.id = old.id;
