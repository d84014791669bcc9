-- +goose Up
-- The peer frames this mainframe bridges with, as last connected. The
-- participant API admits a caller only through this directory, so a
-- restarted mainframe reads it before its mTLS listener serves: a peer
-- frame's call arriving right after a restart is admitted, not refused
-- (a refusal would be taken as definitive and refund the operation).
-- The trust bundles themselves are pinned in the registry's
-- peer_registries rows.
CREATE TABLE bridge_peer_frames (
    frame        text        PRIMARY KEY CHECK (frame ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    trust_domain text        NOT NULL CHECK (length(trust_domain) BETWEEN 1 AND 255),
    teg_id       text        NOT NULL CHECK (teg_id LIKE 'spiffe://%' AND length(teg_id) <= 2048),
    base_url     text        NOT NULL CHECK (base_url LIKE 'https://%' AND length(base_url) <= 2048),
    currency     text        NOT NULL CHECK (length(currency) BETWEEN 1 AND 16),
    updated_at   timestamptz NOT NULL
);

-- +goose Down
DROP TABLE bridge_peer_frames;
