-- +goose Up
-- Federation: a peer's licence changes (added, suspended, reinstated,
-- revoked) are the registry's decisions. Must match events.DefaultPolicy
-- (tested).
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('FederationPeerStatusChanged', false, true, false, false)
ON CONFLICT (event_type) DO NOTHING;

-- +goose Down
DELETE FROM emission_policy WHERE event_type = 'FederationPeerStatusChanged';
