-- +goose Up
-- The relay's per-database sequence counter. Exactly one relay runs per
-- database (it holds an advisory lock), so this row is written by a single
-- writer once per batch, not by every business transaction.
CREATE TABLE outbox_relay_state (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    next_seq  bigint  NOT NULL DEFAULT 1 CHECK (next_seq >= 1)
);
INSERT INTO outbox_relay_state DEFAULT VALUES;

-- +goose Down
DROP TABLE outbox_relay_state;
