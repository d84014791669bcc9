-- +goose Up
-- Reputation runs (EigenTrust over the frame's event graph). Each run
-- merges the events since the previous run into the previous run's graph,
-- computes the scores and stores, here, everything needed to check it:
-- the graph it computed from (canonical encoding, compressed), the
-- parameters, the digests, and where in the event log it stopped. Written
-- by the reputation run alone, never by the ingest transaction.
CREATE TABLE reputation_runs (
    run_id       text        PRIMARY KEY,
    -- The run it continued ('' for the first): unique, so two runs racing
    -- from the same predecessor cannot both commit and the runs form one
    -- chain.
    prev_run_id  text        NOT NULL UNIQUE,
    seq          bigint      NOT NULL UNIQUE CHECK (seq > 0),
    computed_at  timestamptz NOT NULL,
    -- The event-log high-water mark: every segment below scan_from has
    -- been merged, and so have those in done_ids; gap_ids are ids below
    -- one merged that were not visible yet (a batch still committing),
    -- kept in view since gap_seen for a commit window.
    scan_from    bigint      NOT NULL,
    done_ids     bigint[]    NOT NULL,
    gap_ids      bigint[]    NOT NULL,
    gap_seen     timestamptz[] NOT NULL,
    events_merged bigint     NOT NULL,
    params       jsonb       NOT NULL,
    agents       integer     NOT NULL,
    edges        integer     NOT NULL,
    iterations   integer     NOT NULL,
    converged    boolean     NOT NULL,
    delta        double precision NOT NULL,
    -- Agents this run flagged below the enforcement floor (what the
    -- optional slash acts on, again on a retry: slashing is idempotent
    -- per case).
    breached     text[]      NOT NULL DEFAULT '{}',
    input_digest bytea       NOT NULL,
    digest       bytea       NOT NULL,
    graph        bytea       NOT NULL
);
ALTER TABLE reputation_runs ALTER COLUMN graph SET STORAGE EXTERNAL;

-- Every agent's score in a run. trust_bps is the share of the agent's
-- trust that others' trust gave it (0: only the teleportation share, as
-- an agent nobody trusts), what the bond's floor compares.
CREATE TABLE reputation_scores (
    run_id     text             NOT NULL REFERENCES reputation_runs (run_id) ON DELETE CASCADE,
    agent      text             COLLATE "C" NOT NULL,
    score      double precision NOT NULL,
    trust_bps  integer          NOT NULL CHECK (trust_bps BETWEEN 0 AND 10000),
    rank       integer          NOT NULL,
    percentile double precision NOT NULL,
    PRIMARY KEY (run_id, agent)
);
-- An agent's newest score (GET .../trust-score, the bond's check).
CREATE INDEX reputation_scores_agent ON reputation_scores (agent);

-- +goose Down
DROP TABLE reputation_scores;
DROP TABLE reputation_runs;
