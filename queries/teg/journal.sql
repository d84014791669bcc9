-- name: JournalEntryInsert :exec
INSERT INTO journal_entries (id, kind, accounts, buckets, deltas, created_at)
VALUES (@id, @kind, @accounts::text[], @buckets::text[], @deltas::bigint[], @now);

-- name: JournalEntriesInsertTransfers :exec
-- Bulk insert of transfer entries: sender −amount, receiver +(amount − fee),
-- fee_collector +fee, all in liquid. Entries with a zero fee have two legs.
-- Ids travel as 16-byte bytea (pgx encodes Go UUID arrays through
-- driver.Valuer and reflection, which cost more than the insert itself).
INSERT INTO journal_entries (id, kind, accounts, buckets, deltas, created_at)
SELECT encode(u.id, 'hex')::uuid, u.kind,
    CASE WHEN u.fee = 0 THEN ARRAY[u.sender, u.receiver] ELSE ARRAY[u.sender, u.receiver, 'fee_collector'] END,
    CASE WHEN u.fee = 0 THEN ARRAY['liquid', 'liquid'] ELSE ARRAY['liquid', 'liquid', 'liquid'] END,
    CASE WHEN u.fee = 0 THEN ARRAY[-u.amount, u.amount] ELSE ARRAY[-u.amount, u.amount - u.fee, u.fee] END,
    @now
FROM (
    SELECT unnest(@ids::bytea[]) AS id,
        unnest(@kinds::text[]) AS kind,
        unnest(@senders::text[]) AS sender,
        unnest(@receivers::text[]) AS receiver,
        unnest(@amounts::bigint[]) AS amount,
        unnest(@fees::bigint[]) AS fee) AS u;
