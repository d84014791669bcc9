-- name: SupplyOperationInsert :exec
INSERT INTO supply_operations (id, kind, account_id, amount_units, reason, actor, client_key, created_at)
VALUES (@id, @kind, @account_id, @amount_units, @reason, @actor, @client_key, @now);

-- name: SupplyOperationByKey :one
SELECT id, kind, account_id, amount_units, reason, actor, client_key, created_at
FROM supply_operations WHERE kind = @kind AND actor = @actor AND client_key = @client_key;

-- name: SupplyTotals :one
SELECT
    coalesce(sum(amount_units) FILTER (WHERE kind = 'mint'), 0)::bigint AS minted_units,
    coalesce(sum(amount_units) FILTER (WHERE kind = 'burn'), 0)::bigint AS burned_units
FROM supply_operations;
