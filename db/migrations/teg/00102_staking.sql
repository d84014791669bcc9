-- +goose Up
-- Staking (SPEC §6.4). A position's money
-- sits in its owner's `staked` bucket; every move is one journal entry
-- (liquid ↔ staked on the same account, treasury → rewards, staked →
-- treasury penalty) plus its event in the outbox, in one transaction.

ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_kind_check;
ALTER TABLE journal_entries ADD CONSTRAINT journal_entries_kind_check CHECK (kind IN (
    'transfer', 'hold_post', 'mint', 'burn', 'grant',
    'bond_lock', 'bond_release', 'bond_forfeit', 'bond_void',
    'stake', 'unstake', 'staking_reward', 'stake_slash'));

-- Validators: agents that accept delegated stake and keep commission_bps
-- of the rewards of the positions delegated to them.
CREATE TABLE staking_validators (
    agent_did      text COLLATE "C" PRIMARY KEY,
    commission_bps integer     NOT NULL CHECK (commission_bps BETWEEN 0 AND 10000),
    accepting      boolean     NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- One row per stake. principal_units is what the position holds in the
-- owner's staked bucket (grows by auto-compounded rewards). bigint ids make
-- the reward run's keyset pages and per-(date, position) reward keys cheap.
CREATE TABLE stake_positions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner            text COLLATE "C" NOT NULL,
    tier             text        NOT NULL CHECK (tier IN ('flexible', '30d', '90d', '180d', '365d')),
    principal_units  bigint      NOT NULL CHECK (principal_units >= 0),
    staked_units     bigint      NOT NULL CHECK (staked_units > 0), -- the original stake
    auto_compound    boolean     NOT NULL,
    validator        text COLLATE "C", -- delegated to (NULL: none)
    status           text        NOT NULL CHECK (status IN ('active', 'cooldown', 'closed', 'slashed')),
    unlock_at        timestamptz, -- term end of a locked tier; NULL for flexible
    client_key       text        NOT NULL CHECK (length(client_key) BETWEEN 1 AND 200),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    closed_at        timestamptz,
    CONSTRAINT stake_positions_client_key UNIQUE (owner, client_key),
    CONSTRAINT stake_positions_not_self_delegated CHECK (validator IS NULL OR validator <> owner),
    CONSTRAINT stake_positions_lock CHECK ((tier = 'flexible') = (unlock_at IS NULL)),
    CONSTRAINT stake_positions_open_has_principal CHECK (status IN ('closed', 'slashed') OR principal_units > 0)
) WITH (fillfactor = 80); -- rewards update principal_units daily: room for HOT updates
CREATE INDEX stake_positions_owner ON stake_positions (owner, id);
CREATE INDEX stake_positions_validator ON stake_positions (validator, id) WHERE validator IS NOT NULL;

-- A flexible position's unstake request: the cooldown workflow
-- (staking-unstake-<position>) completes it at releases_at. One per
-- position (a position is unstaked once).
CREATE TABLE unstake_requests (
    position_id  bigint      PRIMARY KEY REFERENCES stake_positions (id),
    owner        text COLLATE "C" NOT NULL,
    amount_units bigint      NOT NULL CHECK (amount_units > 0),
    status       text        NOT NULL CHECK (status IN ('pending', 'completed', 'slashed')),
    requested_at timestamptz NOT NULL,
    releases_at  timestamptz NOT NULL,
    completed_at timestamptz,
    CONSTRAINT unstake_requests_after CHECK (releases_at >= requested_at)
);
CREATE INDEX unstake_requests_owner ON unstake_requests (owner, position_id);
CREATE INDEX unstake_requests_due ON unstake_requests (releases_at) WHERE status = 'pending';

-- One row per daily reward run (registry, date). The parameters are fixed
-- when the run starts, so a retried or resumed run pays with the same
-- rates and the same pro-rata factor.
CREATE TABLE staking_reward_runs (
    run_date              date        PRIMARY KEY,
    cutoff                timestamptz NOT NULL, -- positions created before it earn
    tvl_ratio_bps         bigint      NOT NULL,
    apy_bps               bigint[]    NOT NULL, -- per tier, in staking.Tiers order
    due_units             bigint      NOT NULL CHECK (due_units >= 0),  -- Σ full rewards
    treasury_start_units  bigint      NOT NULL CHECK (treasury_start_units >= 0),
    pay_num               bigint      NOT NULL CHECK (pay_num >= 0),    -- pro-rata factor
    pay_den               bigint      NOT NULL CHECK (pay_den > 0 AND pay_num <= pay_den),
    paid_units            bigint      NOT NULL DEFAULT 0,
    paid_positions        bigint      NOT NULL DEFAULT 0,
    shortfall_units       bigint      NOT NULL DEFAULT 0,
    status                text        NOT NULL CHECK (status IN ('running', 'completed')),
    started_at            timestamptz NOT NULL,
    completed_at          timestamptz
);

-- One row per (date, position) paid: the unique key that makes a retried
-- or duplicated page pay once.
CREATE TABLE staking_rewards (
    run_date        date        NOT NULL,
    position_id     bigint      NOT NULL,
    owner           text COLLATE "C" NOT NULL,
    validator       text COLLATE "C",
    reward_units    bigint      NOT NULL CHECK (reward_units > 0),
    owner_units     bigint      NOT NULL CHECK (owner_units >= 0),
    validator_units bigint      NOT NULL CHECK (validator_units >= 0),
    apy_bps         bigint      NOT NULL,
    compounded      boolean     NOT NULL,
    journal_id      uuid        NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (run_date, position_id),
    CONSTRAINT staking_rewards_split CHECK (owner_units + validator_units = reward_units)
);
CREATE INDEX staking_rewards_owner ON staking_rewards (owner, run_date, position_id);
CREATE INDEX staking_rewards_validator ON staking_rewards (validator, run_date, position_id) WHERE validator IS NOT NULL;

-- Enforcement slashing, idempotent per case.
CREATE TABLE stake_slashes (
    case_id        text        PRIMARY KEY CHECK (length(case_id) BETWEEN 1 AND 200),
    agent_did      text COLLATE "C" NOT NULL,
    reason         text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    actor          text        NOT NULL,
    positions      integer     NOT NULL,
    slashed_units  bigint      NOT NULL,
    penalty_units  bigint      NOT NULL,
    created_at     timestamptz NOT NULL
);

-- +goose Down
DROP TABLE stake_slashes;
DROP TABLE staking_rewards;
DROP TABLE staking_reward_runs;
DROP TABLE unstake_requests;
DROP TABLE stake_positions;
DROP TABLE staking_validators;
ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_kind_check;
ALTER TABLE journal_entries ADD CONSTRAINT journal_entries_kind_check CHECK (kind IN (
    'transfer', 'hold_post', 'mint', 'burn', 'grant',
    'bond_lock', 'bond_release', 'bond_forfeit', 'bond_void'));
