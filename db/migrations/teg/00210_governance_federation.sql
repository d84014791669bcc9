-- +goose Up
-- The federation tier of governance (SPEC §6.5): a passed local proposal
-- elevated to every federated registry. Each participating registry keeps
-- the federation proposal as a governance_proposals row with the same ID
-- (its own snapshot and votes, its local power), marked by a
-- governance_federation row. The originating registry also keeps the peers
-- it expects, the key each peer answered with when the proposal was
-- announced, and each peer's signed local tally. See
-- db/ledgerstore/governance_federation.go.

-- 'closed': a peer's copy whose local tally was taken; the result is
-- decided at the originating registry.
ALTER TABLE governance_proposals DROP CONSTRAINT governance_proposals_state_check;
ALTER TABLE governance_proposals ADD CONSTRAINT governance_proposals_state_check
    CHECK (state IN ('open', 'passed', 'rejected', 'enacted', 'vetoed', 'closed'));

CREATE TABLE governance_federation (
    proposal_id      uuid        PRIMARY KEY REFERENCES governance_proposals (id),
    role             text        NOT NULL CHECK (role IN ('origin', 'peer')),
    origin_registry  text COLLATE "C" NOT NULL,
    origin_frame     text        NOT NULL,
    -- The passed local proposal that was elevated (origin only): elevated once.
    local_proposal   uuid        REFERENCES governance_proposals (id),
    -- Origin: peers not answering by then are tallied as missing.
    collect_until    timestamptz NOT NULL,
    -- Origin, once tallied: the aggregate electorate and who was counted or missing.
    total_electorate bigint      CHECK (total_electorate >= 0),
    counted          text[],
    missing          text[],
    CONSTRAINT governance_federation_origin CHECK ((role = 'origin') = (local_proposal IS NOT NULL))
);
CREATE UNIQUE INDEX governance_federation_elevated_once ON governance_federation (local_proposal) WHERE local_proposal IS NOT NULL;

-- Origin: every registry expected to tally, with the Ed25519 key it
-- answered the announcement with (pinned: its tally must verify with it).
CREATE TABLE governance_federation_peers (
    proposal_id  uuid        NOT NULL REFERENCES governance_federation (proposal_id),
    registry     text COLLATE "C" NOT NULL,
    via          text        NOT NULL CHECK (via IN ('frame', 'bridge')),
    public_key   bytea       CHECK (public_key IS NULL OR length(public_key) = 32),
    announced_at timestamptz,
    PRIMARY KEY (proposal_id, registry),
    CONSTRAINT governance_federation_peers_announced CHECK ((public_key IS NULL) = (announced_at IS NULL))
);

-- Signed local tallies: at the origin every counted registry's (its own
-- included); at a peer its own, so a repeated request gets the same one.
CREATE TABLE governance_federation_tallies (
    proposal_id uuid        NOT NULL REFERENCES governance_federation (proposal_id),
    registry    text COLLATE "C" NOT NULL,
    electorate  bigint      NOT NULL CHECK (electorate >= 0),
    yes_power   bigint      NOT NULL CHECK (yes_power >= 0),
    no_power    bigint      NOT NULL CHECK (no_power >= 0),
    abstain_power bigint    NOT NULL CHECK (abstain_power >= 0),
    tallied_at  timestamptz NOT NULL,
    signature   bytea       NOT NULL CHECK (length(signature) = 64),
    public_key  bytea       NOT NULL CHECK (length(public_key) = 32),
    PRIMARY KEY (proposal_id, registry)
);

-- +goose Down
DROP TABLE governance_federation_tallies;
DROP TABLE governance_federation_peers;
DROP TABLE governance_federation;
UPDATE governance_proposals SET state = 'rejected' WHERE state = 'closed';
ALTER TABLE governance_proposals DROP CONSTRAINT governance_proposals_state_check;
ALTER TABLE governance_proposals ADD CONSTRAINT governance_proposals_state_check
    CHECK (state IN ('open', 'passed', 'rejected', 'enacted', 'vetoed'));
