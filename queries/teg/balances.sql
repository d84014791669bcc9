-- name: BalancesLock :many
-- Locks the named (account, bucket) rows FOR UPDATE in (account_id, bucket)
-- order — the ledger's one global lock order (fee_collector is never locked
-- here; it is updated last, see db/ledgerstore) — and returns them. Missing
-- rows are simply absent from the result. account_id = ANY(...) makes this
-- one primary-key probe per account (never a scan of the table); the IN
-- filter keeps exactly the requested buckets.
SELECT b.account_id, b.bucket, b.units, b.held_units
FROM balances AS b
WHERE b.account_id = ANY(@account_ids::text[])
  AND (b.account_id, b.bucket) IN (
    SELECT unnest(@account_ids::text[]) AS account_id, unnest(@buckets::text[]) AS bucket)
ORDER BY b.account_id, b.bucket
FOR UPDATE;

-- name: BalancesRead :many
-- BalancesLock without the lock: the optimistic first read of a
-- group-commit batch (see db/ledgerstore).
SELECT b.account_id, b.bucket, b.units, b.held_units
FROM balances AS b
WHERE b.account_id = ANY(@account_ids::text[])
  AND (b.account_id, b.bucket) IN (
    SELECT unnest(@account_ids::text[]) AS account_id, unnest(@buckets::text[]) AS bucket);

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
-- tests: issued − burned == −issuance == Σ others).
SELECT
    coalesce(sum(units) FILTER (WHERE account_id <> 'issuance'), 0)::bigint AS circulating_units,
    coalesce(sum(units) FILTER (WHERE account_id = 'issuance'), 0)::bigint AS issuance_units
FROM balances;

-- name: BalancesLockInOrder :many
-- BalancesLock for keys the caller passes already sorted in the global lock
-- order ((account_id, bucket) byte order): each row is probed by primary key
-- and locked in array order, so the lock order is the same. Unlike the = ANY
-- form, a row that a concurrent batch updated while we waited for its lock
-- is rechecked alone (a one-row EvalPlanQual), not by re-running the whole
-- array scan; that recheck cost O(batch²) under contention.
SELECT l.account_id, l.bucket, l.units, l.held_units
FROM (
    SELECT unnest(@account_ids::text[]) AS account_id, unnest(@buckets::text[]) AS bucket
) AS k
CROSS JOIN LATERAL (
    SELECT b.account_id, b.bucket, b.units, b.held_units
    FROM balances AS b WHERE b.account_id = k.account_id AND b.bucket = k.bucket
    FOR UPDATE
) AS l;

-- name: BalancesReadByKeys :many
-- BalancesRead as one primary-key probe per key (no lock).
SELECT l.account_id, l.bucket, l.units, l.held_units
FROM (
    SELECT unnest(@account_ids::text[]) AS account_id, unnest(@buckets::text[]) AS bucket
) AS k
CROSS JOIN LATERAL (
    SELECT b.account_id, b.bucket, b.units, b.held_units
    FROM balances AS b WHERE b.account_id = k.account_id AND b.bucket = k.bucket
    LIMIT 1
) AS l;
