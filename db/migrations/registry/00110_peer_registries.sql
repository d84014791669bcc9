-- +goose Up
-- Peer registries (SPEC §7): the registries this registry talks to
-- over mTLS, by SPIFFE ID, with how to fetch their trust domain's bundle.
-- Active rows are the live PeerSet the mTLS authorizer consults on every
-- handshake (identity.AuthorizePeers); removing a peer (status 'removed')
-- refuses its next call. bundle is the peer trust domain's SPIFFE bundle
-- (JSON), fetched and pinned when the peer is added and refreshed
-- periodically; it is public key material, not a secret.
CREATE TABLE peer_registries (
    spiffe_id               text        PRIMARY KEY CHECK (spiffe_id LIKE 'spiffe://%/%' AND length(spiffe_id) <= 2048),
    trust_domain            text        NOT NULL CHECK (length(trust_domain) BETWEEN 1 AND 255),
    base_url                text        NOT NULL CHECK (base_url LIKE 'https://%' AND length(base_url) <= 2048),
    bundle_endpoint_url     text        NOT NULL CHECK (bundle_endpoint_url LIKE 'https://%' AND length(bundle_endpoint_url) <= 2048),
    bundle_endpoint_profile text        NOT NULL CHECK (bundle_endpoint_profile IN ('https_spiffe', 'https_web')),
    -- The SPIFFE ID the bundle endpoint presents (https_spiffe only).
    bundle_endpoint_id      text        CHECK (bundle_endpoint_id IS NULL OR length(bundle_endpoint_id) <= 2048),
    bundle                  bytea       NOT NULL CHECK (length(bundle) BETWEEN 1 AND 65536),
    bundle_refreshed_at     timestamptz NOT NULL,
    status                  text        NOT NULL CHECK (status IN ('active', 'removed')),
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    CHECK (bundle_endpoint_profile <> 'https_spiffe' OR bundle_endpoint_id IS NOT NULL)
);
CREATE INDEX peer_registries_active ON peer_registries (trust_domain) WHERE status = 'active';

-- +goose Down
DROP TABLE peer_registries;
