-- name: TransfersInsert :exec
-- Ids are 16-byte bytea (see JournalEntriesInsertTransfers); an all-zero
-- hold id means none.
INSERT INTO transfers (id, sender, receiver, amount_units, fee_units, fee_bps, memo, client_key, hold_id, created_at)
SELECT encode(u.id, 'hex')::uuid, u.sender, u.receiver, u.amount, u.fee, u.fee_bps, u.memo, u.client_key,
    nullif(encode(u.hold_id, 'hex'), repeat('0', 32))::uuid, @now
FROM (
    SELECT unnest(@ids::bytea[]) AS id,
        unnest(@senders::text[]) AS sender,
        unnest(@receivers::text[]) AS receiver,
        unnest(@amounts::bigint[]) AS amount,
        unnest(@fees::bigint[]) AS fee,
        unnest(@fee_bps::int[]) AS fee_bps,
        unnest(@memos::text[]) AS memo,
        unnest(@client_keys::text[]) AS client_key,
        unnest(@hold_ids::bytea[]) AS hold_id) AS u;

-- name: TransferGet :one
SELECT id, sender, receiver, amount_units, fee_units, fee_bps, memo, client_key, hold_id, created_at, request_hash
FROM transfers WHERE id = @id;

-- name: TransfersByClientKeys :many
-- The already-committed transfers among (sender, client_key) pairs: replays.
-- A lateral join: one unique-index probe per pair, whatever the table size.
-- (LIMIT 1 — the key is unique anyway — keeps the planner from flattening
-- the subquery into a hash join over a sequential scan of all transfers.)
SELECT t.id, t.sender, t.receiver, t.amount_units, t.fee_units, t.fee_bps, t.memo, t.client_key, t.hold_id, t.created_at, t.request_hash
FROM (
    SELECT unnest(@senders::text[]) AS sender,
        unnest(@client_keys::text[]) AS client_key
) AS k
CROSS JOIN LATERAL (
    SELECT x.id, x.sender, x.receiver, x.amount_units, x.fee_units, x.fee_bps, x.memo, x.client_key, x.hold_id, x.created_at, x.request_hash
    FROM transfers AS x WHERE x.sender = k.sender AND x.client_key = k.client_key
    LIMIT 1
) AS t;

-- name: TransferPairCounts :many
-- For each (sender, receiver) pair, in array order (one row per pair), how
-- many transfers it made after since, counting at most max_count (the fee
-- curve is flat beyond that).
SELECT (
    SELECT count(*) FROM (
        SELECT 1 FROM transfers AS t
        WHERE t.sender = p.sender AND t.receiver = p.receiver AND t.created_at > @since
        LIMIT @max_count::int
    ) AS recent
)::int AS recent
FROM (
    SELECT unnest(@senders::text[]) AS sender, unnest(@receivers::text[]) AS receiver,
        generate_series(1, cardinality(@senders::text[])) AS ord
) AS p
ORDER BY p.ord;

-- name: TransfersHistory :many
-- Transfers sent or received by account, newest first, with ids below
-- before (UUIDv7 ids order by time). Each arm is an index range scan.
SELECT h.id, h.sender, h.receiver, h.amount_units, h.fee_units, h.fee_bps, h.memo, h.client_key, h.hold_id, h.created_at, h.request_hash
FROM (
    (SELECT s.id, s.sender, s.receiver, s.amount_units, s.fee_units, s.fee_bps, s.memo, s.client_key, s.hold_id, s.created_at, s.request_hash
     FROM transfers AS s WHERE s.sender = @account AND s.id < @before ORDER BY s.id DESC LIMIT @max_rows::int)
    UNION ALL
    (SELECT r.id, r.sender, r.receiver, r.amount_units, r.fee_units, r.fee_bps, r.memo, r.client_key, r.hold_id, r.created_at, r.request_hash
     FROM transfers AS r WHERE r.receiver = @account AND r.id < @before ORDER BY r.id DESC LIMIT @max_rows::int)
) AS h
ORDER BY h.id DESC
LIMIT @max_rows::int;

-- name: TransfersWrite :many
-- The group-commit write of a batch of transfers in one statement (one
-- round trip, each array encoded once): their transfer rows, each its own
-- journal entry (see ledger_journal, migration 00111). Their outbox events
-- follow by COPY (db/ledgerstore), with ids drawn here from the outbox's own
-- sequence and queued for the relay in outbox_queue — what
-- commondb.OutboxInsertBatch does in one statement; both commit in this
-- transaction. Returns the ids. An empty request hash means none (NULL).
WITH u AS (
    SELECT unnest(@ids::bytea[]) AS id,
        unnest(@senders::text[]) AS sender,
        unnest(@receivers::text[]) AS receiver,
        unnest(@amounts::bigint[]) AS amount,
        unnest(@fees::bigint[]) AS fee,
        unnest(@fee_bps::int[]) AS fee_bps,
        unnest(@memos::text[]) AS memo,
        unnest(@client_keys::text[]) AS client_key,
        unnest(@hold_ids::bytea[]) AS hold_id,
        unnest(@request_hashes::bytea[]) AS request_hash
), t AS (
    INSERT INTO transfers (id, sender, receiver, amount_units, fee_units, fee_bps, memo, client_key, hold_id, created_at, request_hash)
    SELECT encode(u.id, 'hex')::uuid, u.sender, u.receiver, u.amount, u.fee, u.fee_bps, u.memo, u.client_key,
        nullif(encode(u.hold_id, 'hex'), repeat('0', 32))::uuid, @now, nullif(u.request_hash, '')
    FROM u
)
INSERT INTO outbox_queue (id)
SELECT nextval('outbox_id_seq') FROM generate_series(1, @event_count::int)
RETURNING id;
