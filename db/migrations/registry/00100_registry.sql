-- +goose Up
-- The registry role's identity tables (SPEC §7). Secrets never live
-- here in clear: API keys, client secrets and bootstrap tokens are stored as
-- SHA-256 hashes of high-entropy random values (see registry/README.md). Each
-- secret has a public lookup handle (api_key_id, client_id) so the hash is
-- compared in constant time in Go after the row is found by its handle;
-- bootstrap tokens are looked up by hash because their consumption must be a
-- single atomic UPDATE.

CREATE TABLE developers (
    id                 uuid        PRIMARY KEY,
    name               text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email              text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    api_key_id         text        NOT NULL UNIQUE CHECK (length(api_key_id) BETWEEN 8 AND 64),
    api_key_hash       bytea       NOT NULL CHECK (length(api_key_hash) = 32),
    -- Bumped by every rotation; tokens carry the generation they were issued
    -- under, so rotating the key revokes them at once.
    api_key_generation bigint      NOT NULL DEFAULT 1 CHECK (api_key_generation >= 1),
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    suspended_at       timestamptz
);
CREATE UNIQUE INDEX developers_email_unique ON developers (lower(email));

CREATE TABLE organisations (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_by uuid        NOT NULL REFERENCES developers (id),
    created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX organisations_name_unique ON organisations (lower(name));

-- Membership: a row with accepted_at NULL is a pending invitation; only
-- accepted members may act for the organisation. Each (re)invitation gets a
-- fresh id, which keys its events.
CREATE TABLE organisation_members (
    id              uuid        PRIMARY KEY,
    organisation_id uuid        NOT NULL REFERENCES organisations (id),
    developer_id    uuid        NOT NULL REFERENCES developers (id),
    role            text        NOT NULL CHECK (role IN ('owner', 'member')),
    invited_by      uuid        NOT NULL REFERENCES developers (id),
    invited_at      timestamptz NOT NULL,
    accepted_at     timestamptz,
    UNIQUE (organisation_id, developer_id)
);
CREATE INDEX organisation_members_developer ON organisation_members (developer_id);

CREATE TABLE bootstrap_tokens (
    id              uuid        PRIMARY KEY,
    token_hash      bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    developer_id    uuid        NOT NULL REFERENCES developers (id),
    organisation_id uuid        REFERENCES organisations (id),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL CHECK (expires_at > created_at),
    consumed_at     timestamptz,
    consumed_by     text
);
CREATE INDEX bootstrap_tokens_expires_at ON bootstrap_tokens (expires_at);

CREATE TABLE agents (
    did                   text        PRIMARY KEY CHECK (did ~ '^did:theprotocol:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    home_registry         text        NOT NULL CHECK (length(home_registry) BETWEEN 1 AND 64),
    frame                 text        NOT NULL CHECK (length(frame) BETWEEN 1 AND 64),
    developer_id          uuid        NOT NULL REFERENCES developers (id),
    organisation_id       uuid        REFERENCES organisations (id),
    -- One agent per bootstrap token, enforced here as well as by the
    -- consuming UPDATE.
    bootstrap_token_id    uuid        NOT NULL UNIQUE REFERENCES bootstrap_tokens (id),
    client_id             text        NOT NULL UNIQUE CHECK (length(client_id) BETWEEN 8 AND 64),
    client_secret_hash    bytea       NOT NULL CHECK (length(client_secret_hash) = 32),
    credential_generation bigint      NOT NULL DEFAULT 1 CHECK (credential_generation >= 1),
    status                text        NOT NULL CHECK (status IN ('active', 'deregistered')),
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    deregistered_at       timestamptz,
    CHECK ((status = 'deregistered') = (deregistered_at IS NOT NULL))
);
CREATE INDEX agents_developer ON agents (developer_id);
CREATE INDEX agents_organisation ON agents (organisation_id) WHERE organisation_id IS NOT NULL;

-- The published card of an agent (latest version only; every version is an
-- AgentCardPublished event). skill_ids is denormalised from the card for the
-- skill search (GIN) with keyset pagination on did.
CREATE TABLE agent_cards (
    did          text        PRIMARY KEY REFERENCES agents (did),
    version      bigint      NOT NULL CHECK (version >= 1),
    name         text        NOT NULL,
    card         jsonb       NOT NULL,
    skill_ids    text[]      NOT NULL,
    published_at timestamptz NOT NULL
);
CREATE INDEX agent_cards_skill_ids ON agent_cards USING gin (skill_ids);

-- Operator credentials with the admin scope, created by the CLI-callable
-- AdminClientCreate. Revoking a client revokes its tokens at once.
CREATE TABLE admin_clients (
    id                 uuid        PRIMARY KEY,
    name               text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    client_id          text        NOT NULL UNIQUE CHECK (length(client_id) BETWEEN 8 AND 64),
    client_secret_hash bytea       NOT NULL CHECK (length(client_secret_hash) = 32),
    created_at         timestamptz NOT NULL,
    revoked_at         timestamptz
);

-- Individually revoked bearer tokens (by jti) until they expire anyway.
CREATE TABLE revoked_tokens (
    jti        text        PRIMARY KEY CHECK (length(jti) BETWEEN 1 AND 64),
    subject    text        NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    revoked_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

-- +goose Down
DROP TABLE revoked_tokens;
DROP TABLE admin_clients;
DROP TABLE agent_cards;
DROP TABLE agents;
DROP TABLE bootstrap_tokens;
DROP TABLE organisation_members;
DROP TABLE organisations;
DROP TABLE developers;
