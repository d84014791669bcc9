-- name: IdempotencyKeysClaim :many
-- Bulk form of IdempotencyKeyClaim (queries/common) for the batching
-- idempotency store: claims every (scope, key) not yet known and returns the
-- ones it inserted. Keys are inserted in sorted order so concurrent batches
-- cannot deadlock on each other's uncommitted keys.
INSERT INTO idempotency_keys (scope, key, request_hash, method, path, created_at)
SELECT u.scope, u.key, u.request_hash, u.method, u.path, @now
FROM (
    SELECT unnest(@scopes::text[]) AS scope,
        unnest(@keys::text[]) AS key,
        unnest(@request_hashes::bytea[]) AS request_hash,
        unnest(@methods::text[]) AS method,
        unnest(@paths::text[]) AS path
) AS u
ORDER BY u.scope, u.key
ON CONFLICT (scope, key) DO NOTHING
RETURNING scope, key;

-- name: IdempotencyKeysGet :many
SELECT k.scope, k.key, k.request_hash, k.method, k.path, k.status_code, k.response_body, k.created_at
FROM idempotency_keys AS k
WHERE k.scope = ANY(@scopes::text[])
  AND (k.scope, k.key) IN (SELECT unnest(@scopes::text[]) AS scope, unnest(@keys::text[]) AS key);

-- name: IdempotencyKeysComplete :exec
UPDATE idempotency_keys AS k
SET status_code = u.status_code, response_body = u.response_body, completed_at = sqlc.arg(now)::timestamptz
FROM (
    SELECT unnest(@scopes::text[]) AS scope,
        unnest(@keys::text[]) AS key,
        unnest(@status_codes::int[]) AS status_code,
        unnest(@response_bodies::bytea[]) AS response_body
) AS u
WHERE k.scope = u.scope AND k.key = u.key AND k.status_code IS NULL;
