-- +goose Up
-- The TEG ledger (SPEC §4). Money is bigint base units (1 AVT = 10^8).
-- Identifiers use COLLATE "C" so every transaction that locks balance rows
-- in ORDER BY (account_id, bucket) uses the same byte order, whatever the
-- database's default collation: that fixed order is what rules out
-- deadlocks between concurrent transfers (see db/ledgerstore).

CREATE TABLE accounts (
    id         text COLLATE "C" PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
    kind       text        NOT NULL CHECK (kind IN ('agent', 'developer', 'system', 'transit')),
    created_at timestamptz NOT NULL
);

-- One row per (account, bucket). held_units is the sum of the account's
-- active holds (liquid only); available = units - held_units.
-- balances_nonnegative is THE money invariant the database enforces: no
-- bucket of any account except issuance (the contra account of mint/burn)
-- may go below zero, and active holds can never exceed the liquid balance.
CREATE TABLE balances (
    account_id text COLLATE "C" NOT NULL REFERENCES accounts (id),
    bucket     text COLLATE "C" NOT NULL,
    units      bigint      NOT NULL DEFAULT 0,
    held_units bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, bucket),
    CONSTRAINT balances_bucket_known CHECK (
        bucket IN ('liquid', 'staked', 'locked_bond', 'locked_bridge', 'pending_out')
        OR bucket ~ '^wrapped:[a-z0-9][a-z0-9-]{0,31}$'),
    CONSTRAINT balances_held_nonnegative CHECK (held_units >= 0),
    CONSTRAINT balances_held_liquid_only CHECK (held_units = 0 OR bucket = 'liquid'),
    CONSTRAINT balances_nonnegative CHECK (account_id = 'issuance' OR units >= held_units)
) WITH (fillfactor = 70); -- room for HOT updates: balances are updated constantly

-- +goose StatementBegin
-- teg_postings_balanced is true when every delta is non-zero and they sum
-- to exactly zero. The sum is bigint: an overflowing sum raises an error
-- instead of wrapping, so it can never fake a zero. (plpgsql, not SQL: a SQL
-- function with a subquery is not inlined and costs ~2x per row here.)
CREATE FUNCTION teg_postings_balanced(deltas bigint[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    total bigint := 0;
    d     bigint;
BEGIN
    FOREACH d IN ARRAY deltas LOOP
        IF d = 0 THEN
            RETURN false;
        END IF;
        total := total + d;
    END LOOP;
    RETURN total = 0;
END
$$;
-- +goose StatementEnd

-- One row per ledger operation. Its postings are three parallel arrays
-- (account, bucket, delta) so the database can check, per row, that the entry
-- balances; and one row per entry instead of one per leg halves the writes
-- on the transfer hot path.
CREATE TABLE journal_entries (
    id         uuid        PRIMARY KEY, -- UUIDv7; equals the transfer / hold post / supply operation id
    kind       text        NOT NULL CHECK (kind IN ('transfer', 'hold_post', 'mint', 'burn', 'grant')),
    accounts   text[]      NOT NULL,
    buckets    text[]      NOT NULL,
    deltas     bigint[]    NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT journal_entries_shape CHECK (
        array_ndims(deltas) = 1
        AND cardinality(deltas) BETWEEN 2 AND 64
        AND cardinality(accounts) = cardinality(deltas)
        AND cardinality(buckets) = cardinality(deltas)),
    CONSTRAINT journal_entries_balanced CHECK (teg_postings_balanced(deltas))
);

-- Intra-registry transfers, including the transfers made by posting a hold.
-- (sender, client_key) is the business idempotency key: a retried request
-- finds the row and gets the original result, even if the process died
-- between the commit and storing the HTTP response.
-- Sender and receiver existence is checked by locking their balance rows;
-- there are no foreign keys on this hot path.
CREATE TABLE transfers (
    id           uuid        PRIMARY KEY, -- = journal_entries.id
    sender       text COLLATE "C" NOT NULL,
    receiver     text COLLATE "C" NOT NULL,
    amount_units bigint      NOT NULL CHECK (amount_units > 0),       -- debited from the sender
    fee_units    bigint      NOT NULL CHECK (fee_units >= 0),         -- to fee_collector
    fee_bps      integer     NOT NULL CHECK (fee_bps BETWEEN 0 AND 500),
    memo         text        NOT NULL DEFAULT '' CHECK (length(memo) <= 280),
    client_key   text        NOT NULL CHECK (length(client_key) BETWEEN 1 AND 200),
    hold_id      uuid,
    created_at   timestamptz NOT NULL,
    CONSTRAINT transfers_fee_below_amount CHECK (fee_units < amount_units),
    CONSTRAINT transfers_not_self CHECK (sender <> receiver),
    CONSTRAINT transfers_client_key UNIQUE (sender, client_key)
);
CREATE INDEX transfers_pair_time ON transfers (sender, receiver, created_at); -- fee velocity
CREATE INDEX transfers_sender_id ON transfers (sender, id);                   -- history
CREATE INDEX transfers_receiver_id ON transfers (receiver, id);               -- history

-- Two-phase transfers (TigerBeetle style): reserve (active) → posted | voided
-- | expired. An active hold counts in balances.held_units of its account's
-- liquid bucket.
CREATE TABLE holds (
    id           uuid        PRIMARY KEY,
    account_id   text COLLATE "C" NOT NULL,
    receiver     text COLLATE "C" NOT NULL,
    amount_units bigint      NOT NULL CHECK (amount_units > 0),
    posted_units bigint      NOT NULL DEFAULT 0,
    status       text        NOT NULL CHECK (status IN ('active', 'posted', 'voided', 'expired')),
    memo         text        NOT NULL DEFAULT '' CHECK (length(memo) <= 280),
    client_key   text        NOT NULL CHECK (length(client_key) BETWEEN 1 AND 200),
    transfer_id  uuid,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CONSTRAINT holds_posted_range CHECK (posted_units >= 0 AND posted_units <= amount_units),
    CONSTRAINT holds_posted_has_transfer CHECK ((status = 'posted') = (transfer_id IS NOT NULL)),
    CONSTRAINT holds_not_self CHECK (account_id <> receiver),
    CONSTRAINT holds_client_key UNIQUE (account_id, client_key)
);
CREATE INDEX holds_active_expiry ON holds (expires_at) WHERE status = 'active';

-- Mints, burns and treasury grants: admin operations with a reason.
CREATE TABLE supply_operations (
    id           uuid        PRIMARY KEY, -- = journal_entries.id
    kind         text        NOT NULL CHECK (kind IN ('mint', 'burn', 'grant')),
    account_id   text COLLATE "C" NOT NULL, -- credited by mint/grant, debited by burn
    amount_units bigint      NOT NULL CHECK (amount_units > 0),
    reason       text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    actor        text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    client_key   text        NOT NULL CHECK (length(client_key) BETWEEN 1 AND 200),
    created_at   timestamptz NOT NULL,
    CONSTRAINT supply_operations_client_key UNIQUE (kind, actor, client_key)
);

-- The registry's system accounts exist from the start.
INSERT INTO accounts (id, kind, created_at) VALUES
    ('treasury', 'system', now()),
    ('fee_collector', 'system', now()),
    ('issuance', 'system', now());
INSERT INTO balances (account_id, bucket, updated_at) VALUES
    ('treasury', 'liquid', now()),
    ('fee_collector', 'liquid', now()),
    ('issuance', 'liquid', now());

-- +goose Down
DROP TABLE supply_operations;
DROP TABLE holds;
DROP TABLE transfers;
DROP TABLE journal_entries;
DROP FUNCTION teg_postings_balanced(bigint[]);
DROP TABLE balances;
DROP TABLE accounts;
