-- name: AgentCardUpsert :one
-- Publishes a new version of the card (version 1 on first publish).
INSERT INTO agent_cards (did, version, name, card, skill_ids, published_at)
VALUES (@did, 1, @name, @card, @skill_ids::text[], @now)
ON CONFLICT (did) DO UPDATE
SET version = agent_cards.version + 1, name = EXCLUDED.name, card = EXCLUDED.card,
    skill_ids = EXCLUDED.skill_ids, published_at = EXCLUDED.published_at
RETURNING *;

-- name: AgentCardGet :one
SELECT * FROM agent_cards WHERE did = @did;

-- name: AgentCardList :many
-- Active agents with a card, optionally having a skill, in did order after the
-- cursor (keyset pagination).
SELECT c.* FROM agent_cards c
JOIN agents a ON a.did = c.did
WHERE a.status = 'active'
  AND (sqlc.narg(skill)::text IS NULL OR c.skill_ids @> ARRAY[sqlc.narg(skill)::text])
  AND c.did > @after_did
ORDER BY c.did
LIMIT sqlc.arg(max_rows)::int;
