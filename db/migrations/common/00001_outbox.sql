-- +goose Up
-- The transactional outbox (SPEC §5). Every state change writes its events
-- here in the same transaction; the relay publishes them to Kafka and marks
-- them published. Writers never assign source_seq: concurrent writers commit
-- out of id order, so the single relay assigns the gap-free per-source
-- sequence when it claims rows (the EventStore detects gaps with it).
CREATE TABLE outbox (
    id              bigserial   PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    idempotency_key text        NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    event_type      text        NOT NULL CHECK (length(event_type) BETWEEN 1 AND 100),
    subject         text        NOT NULL CHECK (length(subject) <= 200),
    occurred_at     timestamptz NOT NULL,
    envelope        jsonb       NOT NULL,
    source_seq      bigint      UNIQUE,
    published_at    timestamptz
);
CREATE INDEX outbox_unsequenced ON outbox (id) WHERE source_seq IS NULL;
CREATE INDEX outbox_unpublished ON outbox (source_seq) WHERE published_at IS NULL AND source_seq IS NOT NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- +goose Down
DROP TABLE outbox;
