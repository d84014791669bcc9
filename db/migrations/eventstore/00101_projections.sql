-- +goose Up
-- Projections maintained by the EventStore consumer, the single writer of
-- every table below (a maintained projection with several writers becomes a
-- hot row). Each batch updates them in the same transaction that inserts
-- its events, before Kafka offsets are committed.

-- Balance per (account, bucket) as the events report it.
CREATE TABLE projection_balances (
    account  text   NOT NULL,
    bucket   text   NOT NULL,
    balance  bigint NOT NULL,
    PRIMARY KEY (account, bucket)
);

-- The supply audit's running terms (SPEC §5), one row per frame, so reading
-- the audit is O(1).
CREATE TABLE supply_audit (
    frame             text        PRIMARY KEY,
    tokens_issued     bigint      NOT NULL DEFAULT 0,
    tokens_destroyed  bigint      NOT NULL DEFAULT 0,
    transit_net       bigint      NOT NULL DEFAULT 0,
    total_circulating bigint      NOT NULL DEFAULT 0,
    events_applied    bigint      NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL
);

-- Per-source progress: every sequence number <= hwm has arrived; pending
-- holds those seen beyond it (Kafka partitions interleave a source's
-- events), so a gap is hwm+1 .. min(pending)-1.
CREATE TABLE source_progress (
    registry      text        NOT NULL,
    source        text        NOT NULL,
    hwm           bigint      NOT NULL DEFAULT 0,
    max_seen      bigint      NOT NULL DEFAULT 0,
    pending       bigint[]    NOT NULL DEFAULT '{}',
    hwm_moved_at  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (registry, source)
);

-- Events refused on ingest (disallowed source, unknown type, malformed or
-- unbalanced): kept for operators, counted, never applied.
CREATE TABLE quarantine (
    id              bigserial   PRIMARY KEY,
    idempotency_key text        NOT NULL,
    event_type      text        NOT NULL,
    registry        text        NOT NULL,
    source          text        NOT NULL,
    source_seq      bigint      NOT NULL,
    reason          text        NOT NULL,
    raw             bytea       NOT NULL,
    received_at     timestamptz NOT NULL,
    UNIQUE (registry, source, source_seq, idempotency_key)
);

-- Reactors deduplicate by event idempotency key in their own table.
CREATE TABLE reactor_processed (
    reactor         text        NOT NULL,
    idempotency_key text        NOT NULL,
    processed_at    timestamptz NOT NULL,
    PRIMARY KEY (reactor, idempotency_key)
);

-- +goose Down
DROP TABLE reactor_processed;
DROP TABLE quarantine;
DROP TABLE source_progress;
DROP TABLE supply_audit;
DROP TABLE projection_balances;
