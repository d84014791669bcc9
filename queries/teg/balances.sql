-- name: BalancesApply :execrows
-- Adds netted deltas to balance rows in one statement. Each (account, bucket)
-- must appear at most once. The CHECK constraints on balances reject any
-- result below zero for non-issuance accounts.
UPDATE balances AS b
SET units = b.units + d.delta, held_units = b.held_units + d.held_delta, updated_at = @now
FROM (
    SELECT unnest(@account_ids::text[]) AS account_id,
        unnest(@buckets::text[]) AS bucket,
        unnest(@deltas::bigint[]) AS delta,
        unnest(@held_deltas::bigint[]) AS held_delta) AS d
WHERE b.account_id = d.account_id AND b.bucket = d.bucket;

-- name: BalanceTotals :one
-- Σ of every non-issuance balance, and the issuance balance (for audits and
-- tests: issued − burned == −issuance == Σ others), in the native currency:
-- wrapped:<frame> buckets are other frames' currencies, balanced on their
-- own against issuance in the same bucket.
SELECT
    coalesce(sum(units) FILTER (WHERE account_id <> 'issuance'), 0)::bigint AS circulating_units,
    coalesce(sum(units) FILTER (WHERE account_id = 'issuance'), 0)::bigint AS issuance_units
FROM balances WHERE bucket NOT LIKE 'wrapped:%';

-- name: BalancesLockInOrder :many
-- Locks the named (account, bucket) rows FOR UPDATE and returns them;
-- missing rows are simply absent. The caller passes the keys sorted in the
-- ledger's one global lock order, (account_id, bucket) in byte order
-- (fee_collector is never locked here; see db/ledgerstore): each row is
-- probed by primary key and locked in array order. (The earlier form,
-- account_id = ANY(…) … ORDER BY … FOR UPDATE, rechecked a row that a
-- concurrent batch updated while we waited by re-running the whole array
-- scan, re-sorting the array each time: O(batch²) under contention. Here
-- the recheck is one row.) Each row comes back with its key's 1-based
-- position in the arrays instead of the key itself: the caller has the
-- keys, and not sending ~400 account ids back per batch saves the wire
-- bytes and a string allocation per row.
SELECT k.ord::int AS ord, l.units, l.held_units
FROM (
    SELECT unnest(@account_ids::text[]) AS account_id, unnest(@buckets::text[]) AS bucket,
        generate_series(1, cardinality(@account_ids::text[])) AS ord
) AS k
CROSS JOIN LATERAL (
    SELECT b.units, b.held_units
    FROM balances AS b WHERE b.account_id = k.account_id AND b.bucket = k.bucket
    FOR UPDATE
) AS l;

-- name: BalancesReadByKeys :many
-- BalancesLockInOrder without the lock: the optimistic first read of a
-- group-commit batch (see db/ledgerstore).
SELECT k.ord::int AS ord, l.units, l.held_units
FROM (
    SELECT unnest(@account_ids::text[]) AS account_id, unnest(@buckets::text[]) AS bucket,
        generate_series(1, cardinality(@account_ids::text[])) AS ord
) AS k
CROSS JOIN LATERAL (
    SELECT b.units, b.held_units
    FROM balances AS b WHERE b.account_id = k.account_id AND b.bucket = k.bucket
    LIMIT 1
) AS l;
