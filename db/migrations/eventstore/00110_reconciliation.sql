-- +goose Up
-- Reconciliation of the EventStore with each registry's TEG (BalanceCheckpoint
-- events) and transit netting between registries. Every table here is
-- written by the reconciler alone (one pass at a time, under an advisory
-- lock), never by the ingest transaction: reconciliation costs ingest
-- nothing.

-- The reconciler's ordered projection: per registry, the balances its TEG's
-- events leave when folded in the TEG's own sequence order, so that the
-- state as of a checkpoint's covered sequence number is known exactly
-- (the frame-wide projection applies events in arrival order).
CREATE TABLE recon_balances (
    registry text   COLLATE "C" NOT NULL,
    account  text   COLLATE "C" NOT NULL,
    bucket   text   COLLATE "C" NOT NULL,
    balance  bigint NOT NULL,
    PRIMARY KEY (registry, account, bucket)
) WITH (fillfactor = 70);

-- Per registry: how far the fold has gone and the last checkpoint
-- compared. folded_seq: every event of the registry's TEG numbered up to
-- it that is in the log has been folded (numbers never seen are in
-- recon_missing once the fold passed them).
CREATE TABLE recon_sources (
    registry            text        PRIMARY KEY,
    folded_seq          bigint      NOT NULL DEFAULT 0,
    first_folded_at     timestamptz NOT NULL,
    checkpoint_seq      bigint,
    covers_seq          bigint,
    checkpoint_taken_at timestamptz,
    evaluated_at        timestamptz,
    expected            jsonb,
    projected           jsonb,
    missing_count       bigint      NOT NULL DEFAULT 0
);

-- Sequence numbers the fold went past without their event: the source's
-- high-water mark stayed below them past the grace period. An event that
-- arrives later is folded then and its row removed.
CREATE TABLE recon_missing (
    registry    text        NOT NULL,
    seq         bigint      NOT NULL,
    declared_at timestamptz NOT NULL,
    PRIMARY KEY (registry, seq)
);

-- Where the next pass reads segments from: scan_from, skipping the
-- segments at or after it already read (done_ids) unless they hold events
-- not folded yet (buffered_ids). Segment ids are drawn before their batch
-- commits, so an id missing below one already read may still appear:
-- gap_ids, with when each was first seen, stay in view for a while.
CREATE TABLE recon_scan (
    id           boolean       PRIMARY KEY DEFAULT true CHECK (id),
    scan_from    bigint        NOT NULL,
    done_ids     bigint[]      NOT NULL,
    buffered_ids bigint[]      NOT NULL,
    gap_ids      bigint[]      NOT NULL,
    gap_seen     timestamptz[] NOT NULL,
    passed_at    timestamptz   NOT NULL,
    stale_after  interval      NOT NULL
);

-- The decision logs of cross-registry transfers as the folded events tell
-- them: the coordinator's commit (CrossRegistryDebited) and the
-- participant's credit (CrossRegistryCredited). A transfer whose two legs
-- agree is settled and its row deleted; the rest are in flight, or wrong.
CREATE TABLE recon_xfer_legs (
    transfer_id     uuid        PRIMARY KEY,
    source_registry text        NOT NULL,
    target_registry text        NOT NULL,
    debit_units     bigint,
    credit_units    bigint,
    updated_at      timestamptz NOT NULL
);

-- The differences found, one row per registry and term, kept only while
-- non-zero. since: when the difference was first seen; failing: it has
-- outlasted the grace period (the supply audit fails on it).
CREATE TABLE reconciliation (
    registry        text        NOT NULL,
    term            text        NOT NULL,
    expected_units  bigint      NOT NULL,
    projected_units bigint      NOT NULL,
    delta_units     bigint      NOT NULL,
    checkpoint_seq  bigint      NOT NULL,
    covers_seq      bigint      NOT NULL,
    since           timestamptz NOT NULL,
    failing         boolean     NOT NULL,
    PRIMARY KEY (registry, term)
);

-- Transit netting per pair of registries (registry_a < registry_b).
CREATE TABLE transit_netting (
    registry_a      text        NOT NULL,
    registry_b      text        NOT NULL,
    transit_units   bigint      NOT NULL,
    in_flight_units bigint      NOT NULL,
    delta_units     bigint      NOT NULL,
    since           timestamptz,
    failing         boolean     NOT NULL,
    evaluated_at    timestamptz NOT NULL,
    PRIMARY KEY (registry_a, registry_b),
    CHECK (registry_a <= registry_b)
);

-- +goose Down
DROP TABLE transit_netting;
DROP TABLE reconciliation;
DROP TABLE recon_xfer_legs;
DROP TABLE recon_scan;
DROP TABLE recon_missing;
DROP TABLE recon_sources;
DROP TABLE recon_balances;
