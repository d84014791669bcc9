-- name: PeerHandshakeGet :one
SELECT * FROM peer_registries WHERE spiffe_id = @spiffe_id FOR UPDATE;

-- name: PeerHandshakeUpsert :one
-- Records a handshake step for a peer that is new, removed or pending:
-- the acceptances only ever accumulate, and the peer is active once both
-- sides accepted. Never touches an active, suspended or revoked peer (no
-- row then).
INSERT INTO peer_registries (spiffe_id, trust_domain, base_url, bundle_endpoint_url, bundle_endpoint_profile,
    bundle_endpoint_id, bundle, bundle_refreshed_at, status, accepted_here, accepted_there,
    changed_by, change_reason, status_seq, created_at, updated_at)
VALUES (@spiffe_id, @trust_domain, @base_url, @bundle_endpoint_url, @bundle_endpoint_profile,
    sqlc.narg(bundle_endpoint_id), @bundle, @now,
    CASE WHEN @accepted_here::boolean AND @accepted_there::boolean THEN 'active' ELSE 'pending' END,
    @accepted_here, @accepted_there, @changed_by, @change_reason, 1, @now, @now)
ON CONFLICT (spiffe_id) DO UPDATE
SET base_url = EXCLUDED.base_url, bundle_endpoint_url = EXCLUDED.bundle_endpoint_url,
    bundle_endpoint_profile = EXCLUDED.bundle_endpoint_profile, bundle_endpoint_id = EXCLUDED.bundle_endpoint_id,
    bundle = EXCLUDED.bundle, bundle_refreshed_at = EXCLUDED.bundle_refreshed_at,
    accepted_here = CASE WHEN peer_registries.status = 'removed' THEN EXCLUDED.accepted_here ELSE peer_registries.accepted_here OR EXCLUDED.accepted_here END,
    accepted_there = CASE WHEN peer_registries.status = 'removed' THEN EXCLUDED.accepted_there ELSE peer_registries.accepted_there OR EXCLUDED.accepted_there END,
    status = CASE WHEN (peer_registries.status <> 'removed' AND peer_registries.accepted_here OR EXCLUDED.accepted_here)
                   AND (peer_registries.status <> 'removed' AND peer_registries.accepted_there OR EXCLUDED.accepted_there)
             THEN 'active' ELSE 'pending' END,
    changed_by = EXCLUDED.changed_by, change_reason = EXCLUDED.change_reason,
    status_seq = peer_registries.status_seq + 1, updated_at = EXCLUDED.updated_at
WHERE peer_registries.status IN ('pending', 'removed')
RETURNING *;
