-- +goose Up
-- Signed agent cards this registry knows (federation card sync): its own,
-- signed here with the registry key (via = ''), and those pulled from its
-- peers (via = the peer it came from, hops = relays from the origin). One
-- row per origin and DID: two registries claiming one DID stay two rows,
-- a conflict to show, never settled here. A deregistration is kept as a
-- signed tombstone (deleted), so an older version is never taken back.
-- body and signature are stored as received: the signature covers them
-- byte for byte.
CREATE TABLE federation_cards (
    origin      text        NOT NULL CHECK (length(origin) BETWEEN 1 AND 64),
    did         text        NOT NULL CHECK (length(did) <= 64),
    version     bigint      NOT NULL CHECK (version >= 1),
    deleted     boolean     NOT NULL,
    body        bytea       NOT NULL CHECK (length(body) <= 16384),
    signed_at   timestamptz NOT NULL,
    key_id      text        NOT NULL CHECK (length(key_id) BETWEEN 1 AND 64),
    signature   bytea       NOT NULL CHECK (length(signature) = 64),
    hops        integer     NOT NULL CHECK (hops >= 0),
    via         text        NOT NULL CHECK (length(via) <= 64),
    -- The change cursor peers pull by. Assigned under an advisory lock held
    -- to commit, so seq order is commit order and a cursor skips nothing.
    seq         bigint      NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (origin, did)
);
CREATE UNIQUE INDEX federation_cards_seq ON federation_cards (seq);
CREATE INDEX federation_cards_did ON federation_cards (did);
CREATE SEQUENCE federation_card_seq;

-- Own agents whose record changed and is not signed yet. Triggers fill it
-- in the transaction of the change, so no change is missed; signing
-- removes a row only at the mark it read, so a change committed while it
-- signed (the mark moved on) is signed again.
CREATE TABLE federation_card_pending (
    did  text   PRIMARY KEY,
    mark bigint NOT NULL DEFAULT 1
);

-- +goose StatementBegin
CREATE FUNCTION federation_card_pending_mark() RETURNS trigger AS $$
BEGIN
    INSERT INTO federation_card_pending (did) VALUES (NEW.did)
    ON CONFLICT (did) DO UPDATE SET mark = federation_card_pending.mark + 1;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER agents_federation_card AFTER INSERT OR UPDATE OF status ON agents
    FOR EACH ROW EXECUTE FUNCTION federation_card_pending_mark();
CREATE TRIGGER agent_cards_federation_card AFTER INSERT OR UPDATE ON agent_cards
    FOR EACH ROW EXECUTE FUNCTION federation_card_pending_mark();
INSERT INTO federation_card_pending (did) SELECT did FROM agents;

-- Card-signing keys of origin registries, each with the attestation that
-- binds it to the registry's SVID (verified before it is stored; relayed
-- with the cards it signed).
CREATE TABLE federation_card_keys (
    registry    text        NOT NULL CHECK (length(registry) BETWEEN 1 AND 64),
    key_id      text        NOT NULL CHECK (length(key_id) BETWEEN 1 AND 64),
    public_key  bytea       NOT NULL CHECK (length(public_key) = 32),
    attestation bytea       NOT NULL CHECK (length(attestation) <= 65536),
    verified_at timestamptz NOT NULL,
    PRIMARY KEY (registry, key_id)
);

-- How far this registry has pulled each peer's card feed.
CREATE TABLE federation_sync_cursors (
    peer       text        PRIMARY KEY CHECK (length(peer) BETWEEN 1 AND 64),
    cursor     bigint      NOT NULL CHECK (cursor >= 0),
    updated_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE federation_sync_cursors;
DROP TABLE federation_card_keys;
DROP TRIGGER agent_cards_federation_card ON agent_cards;
DROP TRIGGER agents_federation_card ON agents;
DROP FUNCTION federation_card_pending_mark();
DROP TABLE federation_card_pending;
DROP SEQUENCE federation_card_seq;
DROP TABLE federation_cards;
