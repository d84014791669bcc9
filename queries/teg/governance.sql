-- Governance: proposals, snapshots, votes, delegations and the governed
-- fee curve. See db/ledgerstore/governance.go.

-- name: GovernedFeeCurveGet :one
SELECT base_bps, max_bps FROM governed_fee_curve WHERE id = 1;

-- name: GovernedFeeCurveSet :exec
UPDATE governed_fee_curve SET base_bps = @base_bps, max_bps = @max_bps, proposal_id = @proposal_id, updated_at = @now WHERE id = 1;

-- name: GovernanceStakesOpen :many
-- Every position that carries voting power (active; a flexible position in
-- its unstake cooldown carries none).
SELECT owner, tier, principal_units, unlock_at FROM stake_positions WHERE status = 'active' AND principal_units > 0;

-- name: GovernanceStakesOpenByOwner :many
SELECT owner, tier, principal_units, unlock_at FROM stake_positions WHERE owner = @owner AND status = 'active' AND principal_units > 0;

-- name: GovernanceDelegationsAll :many
SELECT delegator, delegate FROM governance_delegations WHERE delegate IS NOT NULL;

-- name: GovernanceDelegationGet :one
SELECT * FROM governance_delegations WHERE delegator = @delegator;

-- name: GovernanceDelegationsTo :many
SELECT delegator FROM governance_delegations WHERE delegate = @delegate ORDER BY delegator LIMIT @max_rows;

-- name: GovernanceDelegationUpsert :one
INSERT INTO governance_delegations (delegator, delegate, version, updated_at)
VALUES (@delegator, sqlc.narg('delegate'), 1, @now)
ON CONFLICT (delegator) DO UPDATE SET delegate = EXCLUDED.delegate, version = governance_delegations.version + 1, updated_at = EXCLUDED.updated_at
RETURNING *;

-- name: GovernanceProposalInsert :exec
INSERT INTO governance_proposals (id, proposer, title, body, window_seconds, quorum_bps, threshold_bps, change, state,
    opens_at, closes_at, electorate, voters, veto_seconds, created_at)
VALUES (@id, @proposer, @title, @body, @window_seconds, @quorum_bps, @threshold_bps, @change, 'open',
    @now, @closes_at, @electorate, @voters, @veto_seconds, @now);

-- name: GovernanceSnapshotCopy :copyfrom
INSERT INTO governance_snapshots (proposal_id, voter, power, delegate) VALUES (@proposal_id, @voter, @power, @delegate);

-- name: GovernanceProposalGet :one
SELECT * FROM governance_proposals WHERE id = @id;

-- name: GovernanceProposalLock :one
SELECT * FROM governance_proposals WHERE id = @id FOR UPDATE;

-- name: GovernanceProposalsPage :many
-- Newest first; keyset on (created_at, id).
SELECT * FROM governance_proposals
WHERE (sqlc.narg('state')::text IS NULL OR state = sqlc.narg('state')::text)
  AND (sqlc.narg('before_at')::timestamptz IS NULL OR (created_at, id) < (sqlc.narg('before_at')::timestamptz, @before_id::uuid))
ORDER BY created_at DESC, id DESC LIMIT @max_rows;

-- name: GovernanceProposalsDue :many
-- Open past their window, or passed with a change past their timelock:
-- the sweep starts (or restarts) their tally workflow. Federation
-- proposals have their own workflow and are not swept here.
(SELECT id FROM governance_proposals p1 WHERE p1.state = 'open' AND p1.closes_at <= @now
    AND NOT EXISTS (SELECT 1 FROM governance_federation f1 WHERE f1.proposal_id = p1.id) ORDER BY p1.closes_at LIMIT @max_rows)
UNION
(SELECT id FROM governance_proposals p2 WHERE p2.state = 'passed' AND p2.change IS NOT NULL AND p2.enact_after <= @now
    AND NOT EXISTS (SELECT 1 FROM governance_federation f2 WHERE f2.proposal_id = p2.id) ORDER BY p2.enact_after LIMIT @max_rows);

-- name: GovernanceProposalSetTally :exec
UPDATE governance_proposals SET state = @state, tallied_at = @now::timestamptz, yes_power = @yes_power::bigint, no_power = @no_power::bigint,
    abstain_power = @abstain_power::bigint, quorum_met = @quorum_met::boolean, enact_after = sqlc.narg('enact_after')
WHERE id = @id AND state = 'open';

-- name: GovernanceProposalSetEnacted :exec
UPDATE governance_proposals SET state = 'enacted', enacted_at = @now::timestamptz WHERE id = @id AND state = 'passed';

-- name: GovernanceProposalSetVetoed :exec
UPDATE governance_proposals SET state = 'vetoed', vetoed_at = @now::timestamptz, veto_actor = @actor::text, veto_reason = @reason::text WHERE id = @id AND state = 'passed';

-- name: GovernanceSnapshotGet :one
SELECT * FROM governance_snapshots WHERE proposal_id = @proposal_id AND voter = @voter;

-- name: GovernanceSnapshotAll :many
SELECT voter, power, delegate FROM governance_snapshots WHERE proposal_id = @proposal_id;

-- name: GovernanceSnapshotReceived :one
-- Power delegated to a voter in a proposal's snapshot (one hop).
SELECT COALESCE(sum(power), 0)::bigint AS received, count(*)::bigint AS delegators
FROM governance_snapshots WHERE proposal_id = @proposal_id AND delegate = @delegate;

-- name: GovernanceVoteGet :one
SELECT * FROM governance_votes WHERE proposal_id = @proposal_id AND voter = @voter;

-- name: GovernanceVoteUpsert :one
INSERT INTO governance_votes (proposal_id, voter, choice, version, cast_at, updated_at)
VALUES (@proposal_id, @voter, @choice, 1, @now, @now)
ON CONFLICT (proposal_id, voter) DO UPDATE SET choice = EXCLUDED.choice, version = governance_votes.version + 1, updated_at = EXCLUDED.updated_at
RETURNING *;

-- name: GovernanceVotesAll :many
SELECT voter, choice FROM governance_votes WHERE proposal_id = @proposal_id;

-- name: GovernanceVotesLockForVote :exec
-- A vote's first statement: votes never block each other (ROW EXCLUSIVE
-- does not conflict with itself), but they wait for a tally in progress
-- (SHARE), and everything the vote reads after it sees that tally.
LOCK TABLE governance_votes IN ROW EXCLUSIVE MODE;

-- name: GovernanceVotesLockForTally :exec
-- A tally's first statement: waits for the votes in flight to commit and
-- holds new ones until the tally commits (they then find it tallied).
LOCK TABLE governance_votes IN SHARE MODE;

-- name: GovernanceStakeOwners :many
-- Every agent holding voting power now, for the developer grouping.
SELECT DISTINCT owner FROM stake_positions WHERE status = 'active' AND principal_units > 0 ORDER BY owner;

-- name: GovernedStakingPremiums :many
SELECT tier, premium_bps FROM governed_staking_premiums ORDER BY tier;

-- name: GovernedStakingPremiumSet :execrows
UPDATE governed_staking_premiums SET premium_bps = @premium_bps, proposal_id = @proposal_id, updated_at = @now WHERE tier = @tier;
