-- +goose Up
-- The frame's immutable event log (SPEC §5). The idempotency key is the
-- deduplication point (the primary key): ingest inserts with ON CONFLICT DO
-- NOTHING, keys in sorted order so concurrent batches cannot deadlock. One
-- index only: every extra index costs ingest throughput (measured: the
-- write path is index-bound), so secondary indexes arrive with the queries
-- that need them. The envelope is stored as json (validated, kept verbatim)
-- rather than jsonb: ingest is write-heavy and jsonb's conversion cost
-- dominated COPY; the replay reads postings with json functions.
CREATE TABLE events (
    idempotency_key text        PRIMARY KEY,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    frame           text        NOT NULL,
    registry        text        NOT NULL,
    source          text        NOT NULL,
    source_seq      bigint      NOT NULL,
    subject         text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    ingested_at     timestamptz NOT NULL,
    envelope        json        NOT NULL
);

-- +goose Down
DROP TABLE events;
