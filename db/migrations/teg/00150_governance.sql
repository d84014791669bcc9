-- +goose Up
-- Governance (SPEC §6.5): proposals, the per-voter power snapshot taken
-- when a proposal opens, votes, delegations of voting power, and the
-- parameters a passed proposal may change. See db/ledgerstore/governance.go.

-- The fee curve's governed part (ledger.FeeCurve): one row, read by every
-- transfer batch, changed only by an enacted proposal.
CREATE TABLE governed_fee_curve (
    id          smallint    PRIMARY KEY CHECK (id = 1),
    base_bps    bigint      NOT NULL,
    max_bps     bigint      NOT NULL,
    proposal_id uuid, -- the enacted proposal that set it (NULL: the default)
    updated_at  timestamptz NOT NULL,
    CONSTRAINT governed_fee_curve_range CHECK (0 <= base_bps AND base_bps <= max_bps AND max_bps <= 500)
);
INSERT INTO governed_fee_curve (id, base_bps, max_bps, updated_at) VALUES (1, 50, 500, now());

-- Delegation of voting power (not of stake), one hop: a row per delegator.
-- version counts changes, for the VoteDelegated event key.
CREATE TABLE governance_delegations (
    delegator  text COLLATE "C" PRIMARY KEY,
    delegate   text COLLATE "C", -- NULL: revoked
    version    bigint      NOT NULL CHECK (version > 0),
    updated_at timestamptz NOT NULL,
    CONSTRAINT governance_delegations_not_self CHECK (delegate IS NULL OR delegate <> delegator)
);

CREATE TABLE governance_proposals (
    id             uuid        PRIMARY KEY,
    proposer       text COLLATE "C" NOT NULL,
    title          text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body           text        NOT NULL CHECK (length(body) <= 20000),
    window_seconds bigint      NOT NULL CHECK (window_seconds > 0),
    quorum_bps     bigint      NOT NULL CHECK (quorum_bps BETWEEN 1 AND 10000),
    threshold_bps  bigint      NOT NULL CHECK (threshold_bps BETWEEN 5000 AND 10000),
    change         jsonb,      -- governance.Change; NULL: not executable
    state          text        NOT NULL CHECK (state IN ('open', 'passed', 'rejected', 'enacted', 'vetoed')),
    opens_at       timestamptz NOT NULL,
    closes_at      timestamptz NOT NULL,
    electorate     bigint      NOT NULL CHECK (electorate >= 0), -- Σ snapshot power
    voters         integer     NOT NULL CHECK (voters >= 0),     -- snapshot rows
    veto_seconds   bigint      NOT NULL CHECK (veto_seconds >= 0), -- timelock after passing
    -- The tally, written once.
    tallied_at     timestamptz,
    yes_power      bigint,
    no_power       bigint,
    abstain_power  bigint,
    quorum_met     boolean,
    enact_after    timestamptz, -- passed with a change: not before
    enacted_at     timestamptz,
    vetoed_at      timestamptz,
    veto_actor     text,
    veto_reason    text CHECK (veto_reason IS NULL OR length(veto_reason) BETWEEN 1 AND 500),
    created_at     timestamptz NOT NULL,
    CONSTRAINT governance_proposals_tallied CHECK ((state = 'open') = (tallied_at IS NULL)),
    CONSTRAINT governance_proposals_enacted CHECK ((state = 'enacted') = (enacted_at IS NOT NULL)),
    CONSTRAINT governance_proposals_vetoed CHECK ((state = 'vetoed') = (vetoed_at IS NOT NULL))
);
CREATE INDEX governance_proposals_created ON governance_proposals (created_at DESC, id);
-- The sweep's scans: open past their window; passed changes past their timelock.
CREATE INDEX governance_proposals_untallied ON governance_proposals (closes_at) WHERE state = 'open';
CREATE INDEX governance_proposals_unenacted ON governance_proposals (enact_after) WHERE state = 'passed' AND change IS NOT NULL;

-- Each voter's power and delegate when the proposal opened.
CREATE TABLE governance_snapshots (
    proposal_id uuid    NOT NULL REFERENCES governance_proposals (id),
    voter       text COLLATE "C" NOT NULL,
    power       bigint  NOT NULL CHECK (power > 0),
    delegate    text COLLATE "C",
    PRIMARY KEY (proposal_id, voter)
);
CREATE INDEX governance_snapshots_delegate ON governance_snapshots (proposal_id, delegate) WHERE delegate IS NOT NULL;

-- Direct votes; a vote may change until the window ends (version counts).
CREATE TABLE governance_votes (
    proposal_id uuid        NOT NULL REFERENCES governance_proposals (id),
    voter       text COLLATE "C" NOT NULL,
    choice      text        NOT NULL CHECK (choice IN ('yes', 'no', 'abstain')),
    version     integer     NOT NULL CHECK (version > 0),
    cast_at     timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (proposal_id, voter)
);

-- +goose Down
DROP TABLE governance_votes;
DROP TABLE governance_snapshots;
DROP TABLE governance_proposals;
DROP TABLE governance_delegations;
DROP TABLE governed_fee_curve;
