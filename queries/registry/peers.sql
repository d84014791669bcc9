-- name: PeerRegistryUpsert :one
-- Adds a peer or re-activates / updates an existing one.
INSERT INTO peer_registries (spiffe_id, trust_domain, base_url, bundle_endpoint_url, bundle_endpoint_profile,
    bundle_endpoint_id, bundle, bundle_refreshed_at, status, created_at, updated_at)
VALUES (@spiffe_id, @trust_domain, @base_url, @bundle_endpoint_url, @bundle_endpoint_profile,
    sqlc.narg(bundle_endpoint_id), @bundle, @now, 'active', @now, @now)
ON CONFLICT (spiffe_id) DO UPDATE
SET trust_domain = EXCLUDED.trust_domain, base_url = EXCLUDED.base_url,
    bundle_endpoint_url = EXCLUDED.bundle_endpoint_url, bundle_endpoint_profile = EXCLUDED.bundle_endpoint_profile,
    bundle_endpoint_id = EXCLUDED.bundle_endpoint_id, bundle = EXCLUDED.bundle,
    bundle_refreshed_at = EXCLUDED.bundle_refreshed_at,
    -- An operator's suspension or revocation is never undone by a re-add.
    status = CASE WHEN peer_registries.status IN ('suspended', 'revoked') THEN peer_registries.status ELSE 'active' END,
    updated_at = EXCLUDED.updated_at
RETURNING *;

-- name: PeerRegistryListActive :many
-- Active peers in spiffe_id order after the cursor (keyset pagination).
SELECT * FROM peer_registries
WHERE status = 'active' AND spiffe_id > @after_spiffe_id
ORDER BY spiffe_id
LIMIT sqlc.arg(max_rows)::int;

-- name: PeerRegistryRemove :execrows
UPDATE peer_registries SET status = 'removed', updated_at = @now
WHERE spiffe_id = @spiffe_id AND status = 'active';

-- name: PeerRegistryCountActiveInTrustDomain :one
SELECT count(*) FROM peer_registries WHERE trust_domain = @trust_domain AND status = 'active';

-- name: PeerRegistryBundleUpdate :execrows
-- Stores a refreshed bundle for every active peer of the trust domain.
UPDATE peer_registries SET bundle = @bundle, bundle_refreshed_at = @now, updated_at = @now
WHERE trust_domain = @trust_domain AND status = 'active';

-- name: PeerRegistrySetStatus :one
-- Moves a peer's licence from one of @from_statuses to @status, recording
-- who and why; no row when the peer is unknown or in another state.
UPDATE peer_registries
SET status = @status, changed_by = @changed_by, change_reason = @change_reason,
    status_seq = status_seq + 1, updated_at = @now
WHERE spiffe_id = @spiffe_id AND status = ANY(@from_statuses::text[])
RETURNING *;

-- name: PeerRegistryGet :one
SELECT * FROM peer_registries WHERE spiffe_id = @spiffe_id;

-- name: PeerRegistryListAll :many
-- Every peer in any state, in spiffe_id order after the cursor.
SELECT * FROM peer_registries
WHERE spiffe_id > @after_spiffe_id
ORDER BY spiffe_id
LIMIT sqlc.arg(max_rows)::int;

-- name: PeerRegistryNotify :exec
-- Tells every process of this registry that the peer set changed (LISTEN
-- theprotocol_peers); delivered when the transaction commits.
SELECT pg_notify('theprotocol_peers', @spiffe_id::text);
