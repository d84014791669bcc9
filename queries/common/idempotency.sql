-- name: IdempotencyKeyClaim :one
-- Claims (scope, key) for a request in flight. Returns the inserted row, or
-- no row when the key already exists (the caller then reads it).
INSERT INTO idempotency_keys (scope, key, request_hash, method, path, created_at)
VALUES (@scope, @key, @request_hash, @method, @path, @now)
ON CONFLICT (scope, key) DO NOTHING
RETURNING scope, key;

-- name: IdempotencyKeyGet :one
SELECT scope, key, request_hash, method, path, status_code, response_body, created_at, completed_at
FROM idempotency_keys WHERE scope = @scope AND key = @key;

-- name: IdempotencyKeyComplete :exec
UPDATE idempotency_keys
SET status_code = @status_code, response_body = @response_body, completed_at = sqlc.arg(now)::timestamptz
WHERE scope = @scope AND key = @key AND status_code IS NULL;

-- name: IdempotencyKeyRelease :exec
-- Drops an in-flight claim whose request failed in a retryable way, so the
-- client may retry with the same key.
DELETE FROM idempotency_keys WHERE scope = @scope AND key = @key AND status_code IS NULL;

-- name: IdempotencyKeySweep :execrows
-- Deletes completed keys older than the cutoff, and abandoned claims (a
-- crashed request) older than it too; bounded per call.
DELETE FROM idempotency_keys AS k
USING (
    SELECT o.scope, o.key FROM idempotency_keys AS o
    WHERE o.created_at < sqlc.arg(cutoff)::timestamptz
    ORDER BY o.created_at
    LIMIT sqlc.arg(max_rows)::int
) AS old
WHERE k.scope = old.scope AND k.key = old.key;

-- name: IdempotencyKeyTakeOver :one
-- Takes over an in-flight claim left by a request that can no longer
-- answer (its process died, or it ran past the server's write timeout):
-- the same request runs again under the caller's claim. The business keys
-- every handler derives from the Idempotency-Key make that safe. No row
-- when the claim is fresh, completed, gone or for another request.
UPDATE idempotency_keys SET created_at = @now
WHERE scope = @scope AND key = @key AND status_code IS NULL
  AND request_hash = @request_hash AND created_at < @stale_before
RETURNING scope, key;
