-- +goose Up
-- Cross-registry transfers (SPEC §6.1): a 2PC saga between the
-- sender's TEG (coordinator: xfers) and the receiver's TEG (participant:
-- xfer_prepares).
--
-- Money path: the sender's funds are reserved by a hold when the transfer
-- is accepted; the commit decision posts the hold to transit:<target>
-- (source TEG), and the participant's commit credits the receiver from
-- transit:<source> (target TEG), the fee going to the target's
-- fee_collector. A transit account on the receiving side therefore goes
-- negative by what flowed in: within the frame the two transit accounts
-- cancel out (the EventStore counts both as circulating, audit delta 0).
ALTER TABLE balances DROP CONSTRAINT balances_nonnegative;
ALTER TABLE balances ADD CONSTRAINT balances_nonnegative
    CHECK (account_id = 'issuance' OR account_id LIKE 'transit:%' OR units >= held_units);

-- The coordinator's record of every cross-registry transfer it accepted.
-- status: pending (hold placed, no decision) → committing (decision
-- commit: hold posted to transit) → committed (the target credited the
-- receiver); pending → aborted (hold voided). The row is the decision log
-- participants ask about (presumed abort only without a row).
CREATE TABLE xfers (
    id              uuid        PRIMARY KEY, -- the transfer ID the API returns
    sender          text COLLATE "C" NOT NULL,
    receiver        text COLLATE "C" NOT NULL,
    target_registry text        NOT NULL CHECK (length(target_registry) BETWEEN 1 AND 64),
    amount_units    bigint      NOT NULL CHECK (amount_units > 0),
    fee_units       bigint      NOT NULL DEFAULT 0 CHECK (fee_units >= 0),
    memo            text        NOT NULL DEFAULT '' CHECK (length(memo) <= 280),
    client_key      text        NOT NULL CHECK (length(client_key) BETWEEN 1 AND 200),
    hold_id         uuid        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'committing', 'committed', 'aborted')),
    reason          text        NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    workflow_id     text        CHECK (workflow_id IS NULL OR length(workflow_id) <= 300),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT xfers_client_key UNIQUE (sender, client_key)
);
-- Pending transfers by age: the batcher's crash recovery.
CREATE INDEX xfers_pending ON xfers (created_at) WHERE status IN ('pending', 'committing');

-- The participant's record of each transfer a peer prepared here.
-- status: prepared (receiver validated, nothing moved) → committed
-- (receiver credited) | aborted; rejected is final (the receiver is unknown
-- here, or the amount cannot carry the fee).
CREATE TABLE xfer_prepares (
    transfer_id        uuid        PRIMARY KEY,
    source_registry    text        NOT NULL CHECK (length(source_registry) BETWEEN 1 AND 64),
    sender             text COLLATE "C" NOT NULL,
    receiver           text COLLATE "C" NOT NULL,
    amount_units       bigint      NOT NULL CHECK (amount_units > 0),
    fee_units          bigint      NOT NULL CHECK (fee_units >= 0),
    fee_bps            integer     NOT NULL CHECK (fee_bps BETWEEN 0 AND 500),
    memo               text        NOT NULL DEFAULT '' CHECK (length(memo) <= 280),
    status             text        NOT NULL CHECK (status IN ('prepared', 'rejected', 'committed', 'aborted')),
    reason             text        NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    credit_transfer_id uuid,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT xfer_prepares_committed_has_credit CHECK ((status = 'committed') = (credit_transfer_id IS NOT NULL))
);
-- Stale prepares: the participant sweeper asks their coordinator.
CREATE INDEX xfer_prepares_open ON xfer_prepares (created_at) WHERE status = 'prepared';

-- +goose Down
DROP TABLE xfer_prepares;
DROP TABLE xfers;
ALTER TABLE balances DROP CONSTRAINT balances_nonnegative;
ALTER TABLE balances ADD CONSTRAINT balances_nonnegative CHECK (account_id = 'issuance' OR units >= held_units);
