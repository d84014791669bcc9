-- +goose Up
-- Which source may author each event type (SPEC §5). Checked when an outbox
-- row is written (a bug guard: the transaction is refused) and again by the
-- EventStore on ingest (a disallowed or unknown event is quarantined, never
-- applied). Must match events.DefaultPolicy (tested). Changing a row is an
-- admin action that emits EmissionPolicyChanged.
CREATE TABLE emission_policy (
    event_type           text        PRIMARY KEY CHECK (length(event_type) BETWEEN 1 AND 100),
    emit_from_teg        boolean     NOT NULL DEFAULT false,
    emit_from_registry   boolean     NOT NULL DEFAULT false,
    emit_from_eventstore boolean     NOT NULL DEFAULT false,
    emit_from_worker     boolean     NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    updated_by           text        NOT NULL DEFAULT 'migration'
);
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('AccountOpened', true, false, false, false),
    ('AgentCardPublished', false, true, false, false),
    ('AgentDeregistered', false, true, false, false),
    ('AgentRegistered', false, true, false, false),
    ('ApiKeyRotated', false, true, false, false),
    ('CredentialsRotated', false, true, false, false),
    ('DeveloperRegistered', false, true, false, false),
    ('EmissionPolicyChanged', false, false, true, false),
    ('HoldExpired', true, false, false, false),
    ('HoldPlaced', true, false, false, false),
    ('HoldPosted', true, false, false, false),
    ('HoldVoided', true, false, false, false),
    ('OrganisationCreated', false, true, false, false),
    ('OrganisationMemberInvited', false, true, false, false),
    ('OrganisationMemberJoined', false, true, false, false),
    ('OrganisationMemberRemoved', false, true, false, false),
    ('ReputationBondForfeited', true, false, false, false),
    ('ReputationBondLocked', true, false, false, false),
    ('ReputationBondMatured', true, false, false, false),
    ('ReputationBondVoided', true, false, false, false),
    ('TokensBurned', true, false, false, false),
    ('TokensIssued', true, false, false, false),
    ('TokensTransferred', true, false, false, false),
    ('TransactionFeeCollected', true, false, false, false),
    ('TreasuryGrant', true, false, false, false);

-- +goose Down
DROP TABLE emission_policy;
