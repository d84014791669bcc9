-- Staking: positions, unstake requests, validators, daily reward
-- runs and slashing. See db/ledgerstore/staking*.go.

-- name: StakePositionInsert :one
INSERT INTO stake_positions (owner, tier, principal_units, staked_units, auto_compound, validator, status, unlock_at, client_key, created_at, updated_at)
VALUES (@owner, @tier, @amount_units, @amount_units, @auto_compound, sqlc.narg('validator'), 'active', sqlc.narg('unlock_at'), @client_key, @now, @now)
RETURNING *;

-- name: StakePositionByKey :one
SELECT * FROM stake_positions WHERE owner = @owner AND client_key = @client_key;

-- name: StakePositionGet :one
SELECT * FROM stake_positions WHERE id = @id;

-- name: StakePositionLock :one
SELECT * FROM stake_positions WHERE id = @id FOR UPDATE;

-- name: StakePositionsByOwner :many
-- Keyset page of an owner's positions, oldest first.
SELECT * FROM stake_positions WHERE owner = @owner AND id > @after_id ORDER BY id LIMIT @max_rows;

-- name: StakePositionsOpenByOwnerLock :many
-- The owner's open positions (active or cooling down), locked in id order
-- (slashing).
SELECT * FROM stake_positions WHERE owner = @owner AND status IN ('active', 'cooldown') ORDER BY id FOR UPDATE;

-- name: StakePositionClose :exec
UPDATE stake_positions SET status = @status, principal_units = 0, closed_at = @now::timestamptz, updated_at = @now::timestamptz WHERE id = @id;

-- name: StakePositionSetCooldown :exec
UPDATE stake_positions SET status = 'cooldown', updated_at = @now WHERE id = @id AND status = 'active';

-- name: StakePositionSetValidator :one
UPDATE stake_positions SET validator = sqlc.narg('validator'), updated_at = @now, delegation_version = delegation_version + 1
WHERE id = @id
RETURNING delegation_version;

-- name: UnstakeRequestInsert :one
INSERT INTO unstake_requests (position_id, owner, amount_units, status, requested_at, releases_at)
VALUES (@position_id, @owner, @amount_units, 'pending', @now, @releases_at)
RETURNING *;

-- name: UnstakeRequestGet :one
SELECT * FROM unstake_requests WHERE position_id = @position_id;

-- name: UnstakeRequestSettle :exec
UPDATE unstake_requests SET status = @status, completed_at = @now::timestamptz WHERE position_id = @position_id AND status = 'pending';

-- name: UnstakeRequestsByOwner :many
SELECT * FROM unstake_requests WHERE owner = @owner AND position_id > @after_id ORDER BY position_id LIMIT @max_rows;

-- name: UnstakeRequestsDue :many
-- Pending requests whose cooldown has ended (the safety net behind the
-- per-request cooldown workflows).
SELECT position_id FROM unstake_requests WHERE status = 'pending' AND releases_at <= @now ORDER BY releases_at, position_id LIMIT @max_rows;

-- name: StakingValidatorUpsert :one
INSERT INTO staking_validators (agent_did, commission_bps, accepting, created_at, updated_at)
VALUES (@agent_did, @commission_bps, @accepting, @now, @now)
ON CONFLICT (agent_did) DO UPDATE SET commission_bps = EXCLUDED.commission_bps, accepting = EXCLUDED.accepting, updated_at = EXCLUDED.updated_at,
    version = staking_validators.version + 1
RETURNING *;

-- name: StakingValidatorGet :one
SELECT * FROM staking_validators WHERE agent_did = @agent_did;

-- name: StakingValidators :many
SELECT v.*, coalesce((SELECT sum(p.principal_units) FROM stake_positions p WHERE p.validator = v.agent_did AND p.status = 'active'), 0)::bigint AS delegated_units
FROM staking_validators v WHERE v.agent_did > @after ORDER BY v.agent_did LIMIT @max_rows;

-- name: StakingTotals :one
-- Σ staked and Σ circulating (every non-issuance balance): the TVL ratio.
SELECT
    coalesce(sum(units) FILTER (WHERE bucket = 'staked'), 0)::bigint AS staked_units,
    coalesce(sum(units) FILTER (WHERE account_id <> 'issuance'), 0)::bigint AS circulating_units
FROM balances;

-- name: StakingRewardDue :one
-- Σ of the day's full rewards, floor(principal × apy / 3,650,000) per
-- eligible position, in exact numeric arithmetic (the same rule as
-- staking.DailyReward).
SELECT coalesce(sum(floor(p.principal_units::numeric * (@apy_bps::bigint[])[array_position(@tiers::text[], p.tier)] / 3650000)), 0)::bigint AS due_units,
    count(*)::bigint AS positions
FROM stake_positions p
WHERE p.status = 'active' AND p.created_at < @cutoff;

-- name: RewardRunInsert :execrows
INSERT INTO staking_reward_runs (run_date, cutoff, tvl_ratio_bps, apy_bps, due_units, treasury_start_units, pay_num, pay_den, status, started_at)
VALUES (@run_date, @cutoff, @tvl_ratio_bps, @apy_bps::bigint[], @due_units, @treasury_start_units, @pay_num, @pay_den, 'running', @now)
ON CONFLICT (run_date) DO NOTHING;

-- name: RewardRunGet :one
SELECT * FROM staking_reward_runs WHERE run_date = @run_date;

-- name: RewardRunLock :one
SELECT * FROM staking_reward_runs WHERE run_date = @run_date FOR UPDATE;

-- name: RewardRunAddPaid :exec
UPDATE staking_reward_runs
SET paid_units = paid_units + @paid_units, paid_positions = paid_positions + @paid_positions,
    shortfall_units = shortfall_units + @shortfall_units
WHERE run_date = @run_date;

-- name: RewardRunComplete :exec
UPDATE staking_reward_runs SET status = 'completed', completed_at = @now::timestamptz WHERE run_date = @run_date AND status = 'running';

-- name: RewardPageSelect :many
-- The next page of positions to pay for run_date, keyset by id: active,
-- created before the cutoff, not yet paid that day. Locked so an unstake
-- or slash cannot change a principal between read and payment.
SELECT p.id, p.owner, p.tier, p.principal_units, p.auto_compound, p.validator,
    coalesce(v.commission_bps, 0)::bigint AS commission_bps
FROM stake_positions p
LEFT JOIN staking_validators v ON v.agent_did = p.validator
WHERE p.id > @after_id AND p.status = 'active' AND p.created_at < @cutoff
  AND NOT EXISTS (SELECT 1 FROM staking_rewards r WHERE r.run_date = @run_date AND r.position_id = p.id)
ORDER BY p.id
LIMIT @max_rows
FOR UPDATE OF p;

-- name: StakingRewardsCopy :copyfrom
INSERT INTO staking_rewards (run_date, position_id, owner, validator, reward_units, owner_units, validator_units, apy_bps, compounded, journal_id, created_at)
VALUES (@run_date, @position_id, @owner, @validator, @reward_units, @owner_units, @validator_units, @apy_bps, @compounded, @journal_id, @created_at);

-- name: StakingJournalCopy :copyfrom
INSERT INTO journal_entries (id, kind, accounts, buckets, deltas, created_at)
VALUES (@id, @kind, @accounts, @buckets, @deltas, @created_at);

-- name: StakePositionsCompound :exec
UPDATE stake_positions AS p SET principal_units = p.principal_units + u.add_units, updated_at = @now
FROM (SELECT unnest(@ids::bigint[]) AS id, unnest(@add_units::bigint[]) AS add_units) AS u
WHERE p.id = u.id;

-- name: StakingRewardsByOwner :many
-- An owner's reward history (as owner or as validator), newest first.
-- Two index scans (as owner, as validator) merged: an OR would scan the
-- whole table, which grows by one row per position per day.
SELECT r.* FROM (
    (SELECT * FROM staking_rewards o
     WHERE o.owner = @agent AND (o.run_date, o.position_id) < (@before_date::date, @before_position::bigint)
     ORDER BY o.run_date DESC, o.position_id DESC LIMIT @max_rows)
    UNION ALL
    (SELECT * FROM staking_rewards v
     WHERE v.validator = @agent AND (v.run_date, v.position_id) < (@before_date::date, @before_position::bigint)
     ORDER BY v.run_date DESC, v.position_id DESC LIMIT @max_rows)
) AS r
ORDER BY r.run_date DESC, r.position_id DESC
LIMIT @max_rows;

-- name: StakeSlashInsert :exec
INSERT INTO stake_slashes (case_id, agent_did, reason, actor, positions, slashed_units, penalty_units, created_at)
VALUES (@case_id, @agent_did, @reason, @actor, @positions, @slashed_units, @penalty_units, @now);

-- name: StakeSlashGet :one
SELECT * FROM stake_slashes WHERE case_id = @case_id;

-- name: RewardPageMore :one
-- Whether positions remain to pay after after_id (a page can come back
-- short when rows it waited for changed status under it).
SELECT EXISTS (
    SELECT 1 FROM stake_positions p
    WHERE p.id > @after_id AND p.status = 'active' AND p.created_at < @cutoff
      AND NOT EXISTS (SELECT 1 FROM staking_rewards r WHERE r.run_date = @run_date AND r.position_id = p.id)
)::boolean AS more;

-- name: StakePositionSetMatured :exec
UPDATE stake_positions SET matured_at = @now::timestamptz, updated_at = @now::timestamptz WHERE id = @id AND matured_at IS NULL;

-- name: StakePositionsMaturityDue :many
-- Open locked positions whose term has ended but that no lock-expiry
-- workflow has marked yet (the safety net behind the per-position
-- workflows).
SELECT id FROM stake_positions
WHERE status = 'active' AND unlock_at IS NOT NULL AND matured_at IS NULL AND unlock_at <= @now::timestamptz
ORDER BY unlock_at, id LIMIT @max_rows;
