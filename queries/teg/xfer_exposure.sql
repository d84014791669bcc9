-- Peer exposure caps on the participant side (db/ledgerstore/xfer_exposure.go).

-- name: XferPreparesOpenTotal :one
-- What a source has prepared here and not yet committed or aborted: the
-- amounts its open prepares reserve under its exposure cap.
SELECT coalesce(sum(amount_units), 0)::bigint AS total
FROM xfer_prepares WHERE source_registry = @source_registry AND status = 'prepared';

-- name: XferTransitBalances :many
-- The liquid balance of every transit account (one per peer; a range of
-- the primary key, the ids being COLLATE "C").
SELECT account_id, units FROM balances
WHERE account_id >= 'transit:' AND account_id < 'transit;' AND bucket = 'liquid'
ORDER BY account_id LIMIT @max_rows::int;
