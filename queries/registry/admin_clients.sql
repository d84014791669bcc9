-- name: AdminClientInsert :one
INSERT INTO admin_clients (id, name, client_id, client_secret_hash, created_at)
VALUES (@id, @name, @client_id, @client_secret_hash, @now)
RETURNING *;

-- name: AdminClientGetByClientID :one
SELECT * FROM admin_clients WHERE client_id = @client_id;

-- name: AdminClientRevoke :one
UPDATE admin_clients SET revoked_at = sqlc.arg(now)::timestamptz WHERE id = @id AND revoked_at IS NULL RETURNING *;

-- name: AdminClientAuthState :one
SELECT (c.revoked_at IS NULL)::bool AS active,
       EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = @jti)::bool AS revoked
FROM admin_clients c WHERE c.id = @id;
