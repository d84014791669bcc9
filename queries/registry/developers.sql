-- name: DeveloperInsert :one
INSERT INTO developers (id, name, email, api_key_id, api_key_hash, api_key_generation, created_at, updated_at)
VALUES (@id, @name, @email, @api_key_id, @api_key_hash, 1, @now, @now)
RETURNING *;

-- name: DeveloperGet :one
SELECT * FROM developers WHERE id = @id;

-- name: DeveloperGetByAPIKeyID :one
-- The API key's public handle finds the row; the caller compares the hash in
-- constant time.
SELECT * FROM developers WHERE api_key_id = @api_key_id;

-- name: DeveloperRotateAPIKey :one
-- Replaces the key and bumps the generation, which revokes every token
-- issued under the old key.
UPDATE developers
SET api_key_id = @api_key_id, api_key_hash = @api_key_hash,
    api_key_generation = api_key_generation + 1, updated_at = @now
WHERE id = @id AND suspended_at IS NULL
RETURNING *;

-- name: DeveloperAuthState :one
-- Per-request check of a developer token: the current key generation and
-- whether this token (jti) was revoked.
SELECT d.api_key_generation AS generation, (d.suspended_at IS NULL)::bool AS active,
       EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = @jti)::bool AS revoked
FROM developers d WHERE d.id = @id;

-- name: DeveloperCount :one
SELECT count(*)::bigint FROM developers;
