-- +goose Up
-- A transfer row is its own journal entry. Transfers written by the
-- group-commit path (TransfersWrite: intra-registry transfers and hold
-- posts) no longer also insert a journal_entries row: the row's columns
-- determine the entry exactly —
--     sender   liquid  −amount_units
--     receiver liquid  +(amount_units − fee_units)
--     fee_collector liquid +fee_units      (only when fee_units > 0)
-- and the transfers CHECK constraints (amount_units > 0, 0 ≤ fee_units <
-- amount_units, sender ≠ receiver) make every such entry non-zero and
-- balanced, which is what journal_entries_balanced enforces for stored
-- entries. That was one heap row, one index entry and the plpgsql balance
-- check per transfer (~7 µs of database CPU of ~130).
--
-- ledger_journal is the complete journal: every stored entry, plus one
-- derived entry per transfer without a stored one (transfers written before
-- this migration and cross-registry legs keep their stored entries; the
-- anti-join is one primary-key probe per transfer, paid only by audits).
-- Kind: 'hold_post' for a transfer that posted a hold, else 'transfer'.
CREATE VIEW ledger_journal AS
SELECT j.id, j.kind, j.accounts, j.buckets, j.deltas, j.created_at
FROM journal_entries AS j
UNION ALL
SELECT t.id,
    CASE WHEN t.hold_id IS NULL THEN 'transfer' ELSE 'hold_post' END,
    CASE WHEN t.fee_units = 0 THEN ARRAY[t.sender::text, t.receiver::text]
         ELSE ARRAY[t.sender::text, t.receiver::text, 'fee_collector'] END,
    CASE WHEN t.fee_units = 0 THEN ARRAY['liquid', 'liquid'] ELSE ARRAY['liquid', 'liquid', 'liquid'] END,
    CASE WHEN t.fee_units = 0 THEN ARRAY[-t.amount_units, t.amount_units]
         ELSE ARRAY[-t.amount_units, t.amount_units - t.fee_units, t.fee_units] END,
    t.created_at
FROM transfers AS t
WHERE NOT EXISTS (SELECT 1 FROM journal_entries AS s WHERE s.id = t.id);

-- +goose Down
-- Materialise the derived entries before the view goes, so the table is
-- the complete journal again.
INSERT INTO journal_entries (id, kind, accounts, buckets, deltas, created_at)
SELECT id, kind, accounts, buckets, deltas, created_at FROM ledger_journal AS l
WHERE NOT EXISTS (SELECT 1 FROM journal_entries AS s WHERE s.id = l.id);
DROP VIEW ledger_journal;
