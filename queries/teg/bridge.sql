-- name: BridgeTransferInsert :exec
INSERT INTO bridge_transfers (id, kind, peer_frame, sender, recipient, amount_units, client_key, status,
    expires_at, workflow_id, created_at, updated_at)
VALUES (@id, @kind, @peer_frame, @sender, @recipient, @amount_units, @client_key, 'pending',
    @expires_at, @workflow_id, @now, @now);

-- name: BridgeTransferInsertMany :exec
-- A batch of accepted sends or redemptions in one statement (the
-- accepter's batch holds the escrow row's lock while it writes).
INSERT INTO bridge_transfers (id, kind, peer_frame, sender, recipient, amount_units, client_key, status,
    expires_at, workflow_id, created_at, updated_at)
SELECT u.id, u.kind, u.peer_frame, u.sender, u.recipient, u.amount_units, u.client_key, 'pending',
    u.expires_at, u.workflow_id, @now, @now
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@kinds::text[]) AS kind, unnest(@peer_frames::text[]) AS peer_frame,
    unnest(@senders::text[]) AS sender, unnest(@recipients::text[]) AS recipient,
    unnest(@amounts::bigint[]) AS amount_units, unnest(@client_keys::text[]) AS client_key,
    unnest(@expires::timestamptz[]) AS expires_at, unnest(@workflow_ids::text[]) AS workflow_id) AS u;

-- name: BridgeTransferGet :one
SELECT * FROM bridge_transfers WHERE id = @id;

-- name: BridgeTransferGetForUpdate :one
SELECT * FROM bridge_transfers WHERE id = @id FOR UPDATE;

-- name: BridgeTransferByKey :one
SELECT * FROM bridge_transfers WHERE sender = @sender AND client_key = @client_key;

-- name: BridgeTransferFinish :exec
UPDATE bridge_transfers SET status = @status, reason = @reason, fee_units = @fee_units, updated_at = @now
WHERE id = @id AND status = 'pending';

-- name: BridgeTransfersPending :many
-- Pending operations with one peer frame (reconciliation: what is in flight).
SELECT id, kind, amount_units FROM bridge_transfers
WHERE peer_frame = @peer_frame AND status = 'pending' ORDER BY id LIMIT 10000;

-- name: BridgeTransfersStale :many
-- Pending operations older than a cut-off (recovery restarts their workflow).
SELECT id, kind, workflow_id FROM bridge_transfers
WHERE status = 'pending' AND created_at < @before ORDER BY created_at LIMIT @max_rows;

-- name: BridgeInboundInsert :execrows
INSERT INTO bridge_inbound (id, kind, peer_frame, recipient, amount_units, fee_units, status, created_at)
VALUES (@id, @kind, @peer_frame, @recipient, @amount_units, @fee_units, @status, @now)
ON CONFLICT (id) DO NOTHING;

-- name: BridgeInboundGet :one
SELECT * FROM bridge_inbound WHERE id = @id;

-- name: BridgeInboundApplied :many
-- Which of ids this TEG applied for peer_frame (reconciliation).
SELECT id FROM bridge_inbound
WHERE peer_frame = @peer_frame AND kind = @kind AND status = 'applied' AND id = ANY(@ids::uuid[]);

-- name: BridgeBalance :one
SELECT coalesce((SELECT units FROM balances WHERE account_id = @account_id AND bucket = @bucket), 0)::bigint AS units;

-- name: BridgeInboundFence :exec
-- Turns an inbound operation refused after its row was written into a fence.
UPDATE bridge_inbound SET status = 'fenced', fee_units = 0, reason = @reason WHERE id = @id;

-- name: BridgeTransfersByIDs :many
SELECT * FROM bridge_transfers WHERE id = ANY(@ids::uuid[]);

-- name: BridgeTransfersComplete :exec
-- Marks pending operations completed with the fee the peer reported.
UPDATE bridge_transfers AS t SET status = 'completed', fee_units = d.fee_units, updated_at = @now
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@fees::bigint[]) AS fee_units) AS d
WHERE t.id = d.id AND t.status = 'pending';

-- name: BridgePeerFrameUpsert :exec
INSERT INTO bridge_peer_frames (frame, trust_domain, teg_id, base_url, currency, updated_at)
VALUES (@frame, @trust_domain, @teg_id, @base_url, @currency, @now)
ON CONFLICT (frame) DO UPDATE SET trust_domain = excluded.trust_domain, teg_id = excluded.teg_id,
    base_url = excluded.base_url, currency = excluded.currency, updated_at = excluded.updated_at;

-- name: BridgePeerFrames :many
SELECT frame, trust_domain, teg_id, base_url, currency FROM bridge_peer_frames ORDER BY frame LIMIT 1000;

-- name: BridgeBalancesEnsure :exec
-- Creates the missing (account, bucket) rows at zero, in the order given
-- (the caller sorts them into the global lock order).
INSERT INTO balances (account_id, bucket, units, held_units, updated_at)
SELECT u.account_id, u.bucket, 0, 0, @now
FROM (SELECT unnest(@account_ids::text[]) AS account_id, unnest(@buckets::text[]) AS bucket,
    generate_series(1, cardinality(@account_ids::text[])) AS ord) AS u
ORDER BY u.ord
ON CONFLICT (account_id, bucket) DO NOTHING;

-- name: BridgeAccountsExisting :many
-- Which of ids are accounts here (a batch of mints' recipients at once).
SELECT id FROM accounts WHERE id = ANY(@ids::text[]);

-- name: BridgeInboundInsertMany :many
-- A batch's inbound rows in one statement, in id order (the order every
-- batch takes their key locks in); returns the ids inserted, the others
-- were recorded before.
INSERT INTO bridge_inbound (id, kind, peer_frame, recipient, amount_units, fee_units, status, created_at)
SELECT u.id, u.kind, u.peer_frame, u.recipient, u.amount_units, u.fee_units, 'applied', @now
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@kinds::text[]) AS kind, unnest(@peer_frames::text[]) AS peer_frame,
    unnest(@recipients::text[]) AS recipient, unnest(@amounts::bigint[]) AS amount_units,
    unnest(@fees::bigint[]) AS fee_units) AS u
ORDER BY u.id
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: BridgeJournalInsertMany :exec
-- A batch's journal entries in one statement: postings flattened, each
-- naming its entry's 1-based position.
INSERT INTO journal_entries (id, kind, accounts, buckets, deltas, created_at)
SELECT e.id, e.kind, p.accounts, p.buckets, p.deltas, @now
FROM (SELECT unnest(@entry_ids::uuid[]) AS id, unnest(@entry_kinds::text[]) AS kind,
    generate_series(1, cardinality(@entry_ids::uuid[])) AS n) AS e
JOIN (
    SELECT u.entry, array_agg(u.account ORDER BY u.ord)::text[] AS accounts,
        array_agg(u.bucket ORDER BY u.ord)::text[] AS buckets, array_agg(u.delta ORDER BY u.ord)::bigint[] AS deltas
    FROM (SELECT unnest(@posting_entries::bigint[]) AS entry, unnest(@posting_accounts::text[]) AS account,
        unnest(@posting_buckets::text[]) AS bucket, unnest(@posting_deltas::bigint[]) AS delta,
        generate_series(1, cardinality(@posting_entries::bigint[])) AS ord) AS u
    GROUP BY u.entry
) p ON p.entry = e.n;
