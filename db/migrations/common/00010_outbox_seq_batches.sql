-- +goose Up
-- Sequencing without rewriting the outbox row. The relay used to assign
-- source_seq with an UPDATE of every outbox row: a non-HOT update (the
-- column is indexed) that copied the row's jsonb envelope into a new tuple
-- with entries in every index, about a sixth of the database's time under
-- cross-registry load. Now:
--   * writers insert the outbox row and its id into outbox_queue (one
--     narrow row) in the same statement; outbox_queue is exactly the set
--     of committed rows without a sequence number yet;
--   * the relay claims queue rows (DELETE … RETURNING, in id order) and
--     records the assignment as one outbox_seq_batches row per pass:
--     ids[k] (1-based) has sequence number first_seq + k − 1. The batches
--     are contiguous and gap-free like the numbers were.
-- The outbox row itself is never updated after its insert.
CREATE TABLE outbox_queue (
    id bigint PRIMARY KEY
);
CREATE TABLE outbox_seq_batches (
    first_seq    bigint      PRIMARY KEY CHECK (first_seq >= 1),
    last_seq     bigint      NOT NULL,
    ids          bigint[]    NOT NULL,
    sequenced_at timestamptz NOT NULL,
    CONSTRAINT outbox_seq_batches_span CHECK (last_seq = first_seq + cardinality(ids) - 1 AND last_seq >= first_seq)
);
INSERT INTO outbox_queue (id) SELECT id FROM outbox WHERE source_seq IS NULL;
-- Existing numbers become batches: contiguous runs of sequence numbers
-- (retention may have left holes), at most 1,000 per batch.
INSERT INTO outbox_seq_batches (first_seq, last_seq, ids, sequenced_at)
SELECT min(source_seq), max(source_seq), array_agg(id ORDER BY source_seq), max(occurred_at)
FROM (SELECT id, source_seq, occurred_at, source_seq - row_number() OVER (ORDER BY source_seq) AS run
      FROM outbox WHERE source_seq IS NOT NULL) AS s
GROUP BY run, (source_seq - 1) / 1000;
ALTER TABLE outbox DROP COLUMN source_seq; -- and its unique and partial indexes

-- +goose Down
ALTER TABLE outbox ADD COLUMN source_seq bigint UNIQUE;
UPDATE outbox AS o SET source_seq = b.first_seq + u.ord - 1
FROM outbox_seq_batches AS b CROSS JOIN LATERAL unnest(b.ids) WITH ORDINALITY AS u(id, ord)
WHERE o.id = u.id;
CREATE INDEX outbox_unsequenced ON outbox (id) WHERE source_seq IS NULL;
DROP TABLE outbox_seq_batches;
DROP TABLE outbox_queue;
