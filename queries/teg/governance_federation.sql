-- The federation tier of governance. See db/ledgerstore/governance_federation.go.

-- name: GovernanceFederationInsert :exec
INSERT INTO governance_federation (proposal_id, role, origin_registry, origin_frame, local_proposal, collect_until)
VALUES (@proposal_id, @role, @origin_registry, @origin_frame, sqlc.narg('local_proposal'), @collect_until);

-- name: GovernanceFederationGet :one
SELECT * FROM governance_federation WHERE proposal_id = @proposal_id;

-- name: GovernanceFederationByLocal :one
SELECT * FROM governance_federation WHERE local_proposal = @local_proposal;

-- name: GovernanceFederationSetResult :exec
UPDATE governance_federation SET total_electorate = @total_electorate::bigint, counted = @counted::text[], missing = @missing::text[]
WHERE proposal_id = @proposal_id AND role = 'origin';

-- name: GovernanceFederationPeerInsert :exec
INSERT INTO governance_federation_peers (proposal_id, registry, via) VALUES (@proposal_id, @registry, @via);

-- name: GovernanceFederationPeers :many
SELECT * FROM governance_federation_peers WHERE proposal_id = @proposal_id ORDER BY registry;

-- name: GovernanceFederationPeerAnnounced :execrows
-- Pins the key the peer answered with; a second announcement must answer
-- the same key (the caller compares).
UPDATE governance_federation_peers SET public_key = @public_key, announced_at = @now::timestamptz
WHERE proposal_id = @proposal_id AND registry = @registry AND public_key IS NULL;

-- name: GovernanceFederationTallyInsert :execrows
INSERT INTO governance_federation_tallies (proposal_id, registry, electorate, yes_power, no_power, abstain_power, tallied_at, signature, public_key)
VALUES (@proposal_id, @registry, @electorate, @yes_power, @no_power, @abstain_power, @tallied_at, @signature, @public_key)
ON CONFLICT (proposal_id, registry) DO NOTHING;

-- name: GovernanceFederationTallies :many
SELECT * FROM governance_federation_tallies WHERE proposal_id = @proposal_id ORDER BY registry;

-- name: GovernanceFederationTallyGet :one
SELECT * FROM governance_federation_tallies WHERE proposal_id = @proposal_id AND registry = @registry;

-- name: GovernanceProposalSetClosed :exec
-- A peer's copy, once its local tally is taken.
UPDATE governance_proposals SET state = 'closed', tallied_at = @now::timestamptz, yes_power = @yes_power::bigint, no_power = @no_power::bigint,
    abstain_power = @abstain_power::bigint, quorum_met = NULL
WHERE id = @id AND state = 'open';

-- name: GovernanceFederationDue :many
-- Federation proposals this registry originated whose tally workflow
-- should be running: open past their collection deadline, or passed with
-- a change past their timelock (the sweep restarts a lost workflow).
(SELECT p1.id FROM governance_proposals p1 JOIN governance_federation f1 ON f1.proposal_id = p1.id
 WHERE f1.role = 'origin' AND p1.state = 'open' AND f1.collect_until <= @now ORDER BY f1.collect_until LIMIT @max_rows)
UNION
(SELECT p2.id FROM governance_proposals p2 JOIN governance_federation f2 ON f2.proposal_id = p2.id
 WHERE f2.role = 'origin' AND p2.state = 'passed' AND p2.change IS NOT NULL AND p2.enact_after <= @now ORDER BY p2.enact_after LIMIT @max_rows);
