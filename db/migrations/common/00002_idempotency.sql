-- +goose Up
-- Stored responses of mutating API calls, keyed per caller (SPEC §4). A row
-- with status_code NULL is a claim by a request still in flight; a
-- concurrent duplicate sees it and gets 409 instead of running twice. Rows
-- are kept for at least 24 h (swept by the IdempotencySweep workflow).
CREATE TABLE idempotency_keys (
    scope          text        NOT NULL CHECK (length(scope) BETWEEN 1 AND 200),
    key            text        NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash   bytea       NOT NULL,
    method         text        NOT NULL,
    path           text        NOT NULL,
    status_code    integer,
    response_body  bytea,
    created_at     timestamptz NOT NULL,
    completed_at   timestamptz,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
