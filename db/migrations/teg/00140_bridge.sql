-- +goose Up
-- Cross-frame bridge (SPEC §6.2). Value leaving this frame is escrowed in
-- the locked_bridge bucket of bridge:<target frame> (one escrow account
-- per peer frame, like a per-channel escrow), and value arriving from
-- another frame is minted as wrapped:<origin frame> against issuance,
-- never as this frame's native currency.

-- Bridge operations this TEG started, each run by one workflow:
--   send:   lock here (sender liquid → bridge:<peer> locked_bridge), then the
--           peer mints wrapped:<this frame> to the recipient;
--   redeem: burn wrapped:<peer> here, then the peer releases from its
--           escrow to the recipient.
-- status: pending → completed (the peer applied it) | refunded (the peer
-- refused or never applied it: unlocked, or re-minted). expires_at is the
-- last instant the peer may still apply the operation; the peer refuses
-- it afterwards, so once it passed (and the peer says it did not apply
-- it) a refund cannot race a late application.
CREATE TABLE bridge_transfers (
    id           uuid        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('send', 'redeem')),
    peer_frame   text        NOT NULL CHECK (peer_frame ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    sender       text COLLATE "C" NOT NULL CHECK (length(sender) BETWEEN 1 AND 200),
    recipient    text COLLATE "C" NOT NULL CHECK (length(recipient) BETWEEN 1 AND 200),
    amount_units bigint      NOT NULL CHECK (amount_units > 0),
    client_key   text        NOT NULL CHECK (length(client_key) BETWEEN 1 AND 200),
    status       text        NOT NULL CHECK (status IN ('pending', 'completed', 'refunded')),
    reason       text        NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    fee_units    bigint      NOT NULL DEFAULT 0 CHECK (fee_units >= 0),
    expires_at   timestamptz NOT NULL,
    workflow_id  text        NOT NULL CHECK (length(workflow_id) <= 300),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CONSTRAINT bridge_transfers_client_key UNIQUE (sender, client_key)
);
CREATE INDEX bridge_transfers_pending ON bridge_transfers (peer_frame, kind) WHERE status = 'pending';

-- Operations a peer frame asked this TEG to apply: mint (wrapped:<peer>
-- to the recipient) or release (from bridge:<peer> to the recipient).
-- status: applied, or fenced: the peer asked about an operation this TEG
-- never applied, so it never will (the peer then refunds).
CREATE TABLE bridge_inbound (
    id           uuid        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('mint', 'release')),
    peer_frame   text        NOT NULL CHECK (peer_frame ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    recipient    text COLLATE "C" NOT NULL CHECK (length(recipient) BETWEEN 1 AND 200),
    amount_units bigint      NOT NULL CHECK (amount_units >= 0),
    fee_units    bigint      NOT NULL DEFAULT 0 CHECK (fee_units >= 0),
    status       text        NOT NULL CHECK (status IN ('applied', 'fenced')),
    reason       text        NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    created_at   timestamptz NOT NULL
);

-- +goose Down
DROP TABLE bridge_inbound;
DROP TABLE bridge_transfers;
