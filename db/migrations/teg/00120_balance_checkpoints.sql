-- +goose Up
-- Balance checkpoints this TEG wrote (BalanceCheckpoint events): the
-- outbox sequence number each covers and what it stated, for operators
-- and to space scheduled checkpoints. Written once per checkpoint, in its
-- transaction; never updated.
CREATE TABLE balance_checkpoints (
    covers_seq bigint      PRIMARY KEY CHECK (covers_seq >= 0),
    taken_at   timestamptz NOT NULL,
    accounts   bigint      NOT NULL,
    digest     text        NOT NULL
);

-- +goose Down
DROP TABLE balance_checkpoints;
