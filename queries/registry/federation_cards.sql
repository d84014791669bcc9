-- name: FederationCardLock :exec
-- Serialises writers of federation_cards until commit, so seq order is
-- commit order (a reader's cursor never skips a late commit).
SELECT pg_advisory_xact_lock(hashtext('theprotocol.federation_cards'));

-- name: FederationCardNextSeq :one
SELECT nextval('federation_card_seq')::bigint;

-- name: FederationCardPendingTake :many
-- Own agents to sign, with their state and card (NULL without one).
SELECT p.did, p.mark, a.status, c.card, coalesce(f.version, 0)::bigint AS signed_version
FROM federation_card_pending p
JOIN agents a ON a.did = p.did
LEFT JOIN agent_cards c ON c.did = p.did
LEFT JOIN federation_cards f ON f.origin = @origin AND f.did = p.did
ORDER BY p.did
LIMIT sqlc.arg(max_rows)::int;

-- name: FederationCardPendingDelete :exec
-- Clears the signed marks, each only if no change moved it since it was read.
DELETE FROM federation_card_pending
WHERE (did, mark) IN (SELECT unnest(@dids::text[]), unnest(@marks::bigint[]));

-- name: FederationCardGet :one
SELECT * FROM federation_cards WHERE origin = @origin AND did = @did;

-- name: FederationCardUpsert :exec
INSERT INTO federation_cards (origin, did, version, deleted, body, signed_at, key_id, signature, hops, via, seq, received_at)
VALUES (@origin, @did, @version, @deleted, @body, @signed_at, @key_id, @signature, @hops, @via, @seq, @now)
ON CONFLICT (origin, did) DO UPDATE
SET version = EXCLUDED.version, deleted = EXCLUDED.deleted, body = EXCLUDED.body, signed_at = EXCLUDED.signed_at,
    key_id = EXCLUDED.key_id, signature = EXCLUDED.signature, hops = EXCLUDED.hops, via = EXCLUDED.via,
    seq = EXCLUDED.seq, received_at = EXCLUDED.received_at;

-- name: FederationCardFeed :many
-- The cards a peer pulls after its cursor: signed here or received from a
-- live peer, from an origin not cut off, below the hop bound, and neither
-- originated by nor received from the caller (it has them).
SELECT c.* FROM federation_cards c
WHERE c.seq > @after_seq AND c.hops < sqlc.arg(max_hops)::int
  AND c.origin <> @caller AND c.via <> @caller
  AND (c.via = '' OR EXISTS (SELECT 1 FROM peer_registries p WHERE p.spiffe_id = @id_prefix::text || c.via AND p.status = 'active'))
  AND NOT EXISTS (SELECT 1 FROM peer_registries p WHERE p.spiffe_id = @id_prefix::text || c.origin AND p.status IN ('suspended', 'revoked'))
ORDER BY c.seq
LIMIT sqlc.arg(max_rows)::int;

-- name: FederationCardView :many
-- The cards of a DID this registry currently sees: its own, or received
-- from a live peer, from an origin not cut off (tombstones included; the
-- caller filters).
SELECT c.* FROM federation_cards c
WHERE c.did = @did
  AND (c.via = '' OR EXISTS (SELECT 1 FROM peer_registries p WHERE p.spiffe_id = @id_prefix::text || c.via AND p.status = 'active'))
  AND NOT EXISTS (SELECT 1 FROM peer_registries p WHERE p.spiffe_id = @id_prefix::text || c.origin AND p.status IN ('suspended', 'revoked'))
ORDER BY c.origin;

-- name: FederationCardKeyGet :one
SELECT * FROM federation_card_keys WHERE registry = @registry AND key_id = @key_id;

-- name: FederationCardKeyPut :exec
INSERT INTO federation_card_keys (registry, key_id, public_key, attestation, verified_at)
VALUES (@registry, @key_id, @public_key, @attestation, @now)
ON CONFLICT (registry, key_id) DO NOTHING;

-- name: FederationSyncCursorGet :one
SELECT cursor FROM federation_sync_cursors WHERE peer = @peer;

-- name: FederationSyncCursorSet :exec
INSERT INTO federation_sync_cursors (peer, cursor, updated_at) VALUES (@peer, @cursor, @now)
ON CONFLICT (peer) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at;
