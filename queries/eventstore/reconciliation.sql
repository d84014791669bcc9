-- Reconciliation (ingest/reconcile.go); written by the reconciler only.

-- name: ReconLockTry :one
SELECT pg_try_advisory_xact_lock(@key::bigint)::boolean AS locked;

-- name: ReconScanGet :one
SELECT scan_from, done_ids, buffered_ids, gap_ids, gap_seen, passed_at,
       extract(epoch FROM stale_after)::float8 AS stale_after_seconds
FROM recon_scan;

-- name: ReconScanPut :exec
INSERT INTO recon_scan (id, scan_from, done_ids, buffered_ids, gap_ids, gap_seen, passed_at, stale_after)
VALUES (true, @scan_from, @done_ids::bigint[], @buffered_ids::bigint[], @gap_ids::bigint[], @gap_seen::timestamptz[],
        @passed_at, make_interval(secs => @stale_after_seconds::float8))
ON CONFLICT (id) DO UPDATE SET scan_from = excluded.scan_from, done_ids = excluded.done_ids,
    buffered_ids = excluded.buffered_ids, gap_ids = excluded.gap_ids, gap_seen = excluded.gap_seen,
    passed_at = excluded.passed_at, stale_after = excluded.stale_after;

-- name: ReconSourcesList :many
SELECT registry, folded_seq, first_folded_at, checkpoint_seq, covers_seq, checkpoint_taken_at, evaluated_at,
       expected, projected, missing_count
FROM recon_sources ORDER BY registry;

-- name: ReconSourcePut :exec
INSERT INTO recon_sources (registry, folded_seq, first_folded_at, checkpoint_seq, covers_seq, checkpoint_taken_at,
                           evaluated_at, expected, projected, missing_count)
VALUES (@registry, @folded_seq, @first_folded_at, @checkpoint_seq, @covers_seq, @checkpoint_taken_at,
        @evaluated_at, @expected, @projected, @missing_count)
ON CONFLICT (registry) DO UPDATE SET folded_seq = excluded.folded_seq, checkpoint_seq = excluded.checkpoint_seq,
    covers_seq = excluded.covers_seq, checkpoint_taken_at = excluded.checkpoint_taken_at,
    evaluated_at = excluded.evaluated_at, expected = excluded.expected, projected = excluded.projected,
    missing_count = excluded.missing_count;

-- name: ReconEventsByKeys :many
-- Where the log keeps each (registry, key)'s event (the fold takes a body
-- only from the place its row points to: exactly once, whatever a segment
-- repeats). Keys are unique per registry: the pairs are the primary key.
SELECT e.idempotency_key, e.registry, e.source, e.source_seq, coalesce(e.segment_id, 0)::bigint AS segment_id,
       coalesce(e.segment_pos, -1)::int AS segment_pos
FROM (SELECT unnest(@registries::text[]) AS registry, unnest(@keys::text[]) AS key) AS k
JOIN events AS e ON e.registry = k.registry AND e.idempotency_key = k.key;

-- name: ReconBalancesAdd :exec
-- Netted deltas of one fold step (keys unique in the arrays).
INSERT INTO recon_balances (registry, account, bucket, balance)
SELECT unnest(@registries::text[]), unnest(@accounts::text[]), unnest(@buckets::text[]), unnest(@deltas::bigint[])
ON CONFLICT (registry, account, bucket) DO UPDATE SET balance = recon_balances.balance + excluded.balance;

-- name: ReconBalancesPage :many
-- One registry's balances in (account, bucket) byte order, after a key.
SELECT account, bucket, balance FROM recon_balances
WHERE registry = @registry AND (account, bucket) > (@after_account::text, @after_bucket::text)
ORDER BY account, bucket
LIMIT @max_rows;

-- name: ReconProjectionOfRegistry :many
-- The frame-wide projection's balance of every account the registry's
-- folded events touched, named as the registry names them (see
-- ingest.Qualify: DIDs and names with a slash are frame-wide).
SELECT r.account, r.bucket, coalesce(p.balance, 0)::bigint AS balance
FROM recon_balances AS r
LEFT JOIN projection_balances AS p
  ON p.account = CASE WHEN r.account LIKE 'did:%' OR strpos(r.account, '/') > 0 THEN r.account ELSE @registry::text || '/' || r.account END
 AND p.bucket = r.bucket
WHERE r.registry = @registry;

-- name: ProjectionBalancesGet :many
SELECT account, bucket, balance FROM projection_balances
WHERE (account, bucket) IN (SELECT unnest(@accounts::text[]), unnest(@buckets::text[]));

-- name: ReconTransitBalances :many
-- A registry's transit:<peer> accounts (an index range: ';' follows ':').
SELECT account, bucket, balance FROM recon_balances
WHERE registry = @registry AND account >= 'transit:' AND account < 'transit;';

-- name: ReconLegsDebit :exec
INSERT INTO recon_xfer_legs (transfer_id, source_registry, target_registry, debit_units, updated_at)
SELECT unnest(@ids::uuid[]), unnest(@sources::text[]), unnest(@targets::text[]), unnest(@units::bigint[]), @now
ON CONFLICT (transfer_id) DO UPDATE SET debit_units = excluded.debit_units, updated_at = excluded.updated_at;

-- name: ReconLegsCredit :exec
INSERT INTO recon_xfer_legs (transfer_id, source_registry, target_registry, credit_units, updated_at)
SELECT unnest(@ids::uuid[]), unnest(@sources::text[]), unnest(@targets::text[]), unnest(@units::bigint[]), @now
ON CONFLICT (transfer_id) DO UPDATE SET credit_units = excluded.credit_units, updated_at = excluded.updated_at;

-- name: ReconLegsPruneSettled :exec
DELETE FROM recon_xfer_legs WHERE debit_units IS NOT NULL AND debit_units = credit_units;

-- name: ReconLegsList :many
SELECT transfer_id, source_registry, target_registry, debit_units, credit_units FROM recon_xfer_legs;

-- name: ReconMissingAdd :exec
INSERT INTO recon_missing (registry, seq, declared_at)
SELECT @registry, unnest(@seqs::bigint[]), @now
ON CONFLICT DO NOTHING;

-- name: ReconMissingRemove :many
-- The numbers among seqs that were declared missing, no longer so.
DELETE FROM recon_missing WHERE registry = @registry AND seq = ANY(@seqs::bigint[])
RETURNING seq;

-- name: ReconMissingList :many
SELECT seq FROM recon_missing WHERE registry = @registry ORDER BY seq LIMIT @max_rows;

-- name: ReconDifferencesList :many
SELECT registry, term, expected_units, projected_units, delta_units, checkpoint_seq, covers_seq, since, failing
FROM reconciliation ORDER BY registry, term;

-- name: ReconDifferencesClear :exec
DELETE FROM reconciliation WHERE registry = @registry;

-- name: ReconDifferencePut :exec
INSERT INTO reconciliation (registry, term, expected_units, projected_units, delta_units, checkpoint_seq, covers_seq, since, failing)
VALUES (@registry, @term, @expected_units, @projected_units, @delta_units, @checkpoint_seq, @covers_seq, @since, @failing);

-- name: ReconDifferenceDelete :exec
DELETE FROM reconciliation WHERE registry = @registry AND term = @term;

-- name: ReconDifferencesSetFailing :exec
UPDATE reconciliation SET failing = true WHERE NOT failing AND since <= @cutoff;

-- name: NettingList :many
SELECT registry_a, registry_b, transit_units, in_flight_units, delta_units, since, failing, evaluated_at
FROM transit_netting ORDER BY registry_a, registry_b;

-- name: NettingPut :exec
INSERT INTO transit_netting (registry_a, registry_b, transit_units, in_flight_units, delta_units, since, failing, evaluated_at)
VALUES (@registry_a, @registry_b, @transit_units, @in_flight_units, @delta_units, @since, @failing, @evaluated_at)
ON CONFLICT (registry_a, registry_b) DO UPDATE SET transit_units = excluded.transit_units,
    in_flight_units = excluded.in_flight_units, delta_units = excluded.delta_units, since = excluded.since,
    failing = excluded.failing, evaluated_at = excluded.evaluated_at;
