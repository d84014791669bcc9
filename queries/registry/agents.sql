-- name: AgentInsert :one
INSERT INTO agents (did, home_registry, frame, developer_id, organisation_id, bootstrap_token_id,
                    client_id, client_secret_hash, credential_generation, status, created_at, updated_at)
VALUES (@did, @home_registry, @frame, @developer_id, sqlc.narg(organisation_id), @bootstrap_token_id,
        @client_id, @client_secret_hash, 1, 'active', @now, @now)
RETURNING *;

-- name: AgentGet :one
SELECT * FROM agents WHERE did = @did;

-- name: AgentGetForUpdate :one
SELECT * FROM agents WHERE did = @did FOR UPDATE;

-- name: AgentGetByClientID :one
-- The client_id finds the row; the caller compares the secret hash in
-- constant time.
SELECT * FROM agents WHERE client_id = @client_id;

-- name: AgentRotateCredentials :one
-- New client_id and secret, generation bumped: the old secret and every token
-- issued under it stop working with this commit.
UPDATE agents
SET client_id = @client_id, client_secret_hash = @client_secret_hash,
    credential_generation = credential_generation + 1, updated_at = @now
WHERE did = @did AND status = 'active'
RETURNING *;

-- name: AgentDeregister :one
UPDATE agents
SET status = 'deregistered', deregistered_at = sqlc.arg(now)::timestamptz, updated_at = sqlc.arg(now)::timestamptz
WHERE did = @did AND status = 'active'
RETURNING *;

-- name: AgentAuthState :one
-- Per-request check of an agent token.
SELECT a.credential_generation AS generation, (a.status = 'active')::bool AS active,
       EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = @jti)::bool AS revoked
FROM agents a WHERE a.did = @did;

-- name: AgentCount :one
SELECT count(*)::bigint FROM agents WHERE status = 'active';

-- name: AgentDevelopers :many
-- The developer of each listed agent (governance's split-stake defence).
SELECT did, developer_id FROM agents WHERE did = ANY(@dids::text[]);
