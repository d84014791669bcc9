-- +goose Up
-- The frame's immutable event log (SPEC §5). The idempotency key is the
-- deduplication point: ingest inserts with ON CONFLICT DO NOTHING, keys in
-- sorted order so concurrent batches cannot deadlock.
CREATE TABLE events (
    event_id        uuid        PRIMARY KEY,
    idempotency_key text        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    frame           text        NOT NULL,
    registry        text        NOT NULL,
    source          text        NOT NULL,
    source_seq      bigint      NOT NULL,
    subject         text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    ingested_at     timestamptz NOT NULL,
    envelope        jsonb       NOT NULL
);
CREATE INDEX events_source_seq ON events (registry, source, source_seq);
CREATE INDEX events_subject ON events (subject, occurred_at);

-- +goose Down
DROP TABLE events;
