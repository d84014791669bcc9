-- name: BondMoveInsert :exec
INSERT INTO bond_moves (id, kind, agent_did, counter_account, amount_units, client_key, created_at)
VALUES (@id, @kind, @agent_did, @counter_account, @amount_units, @client_key, @now);

-- name: BondMoveByKey :one
SELECT id, kind, agent_did, counter_account, amount_units, client_key, created_at
FROM bond_moves WHERE client_key = @client_key;

-- name: BondMovesByAgent :many
SELECT id, kind, agent_did, counter_account, amount_units, client_key, created_at
FROM bond_moves WHERE agent_did = @agent_did ORDER BY created_at, id;

-- name: TransfersSentCount :one
-- Transfers the account sent (the bond's activity criterion).
SELECT count(*)::bigint FROM transfers WHERE sender = @sender;
