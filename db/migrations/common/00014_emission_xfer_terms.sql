-- +goose Up
-- CrossRegistryTermsMismatch (xfer-<id>-mismatch): the coordinator TEG
-- aborted a transfer because its target prepared other terms than the
-- coordinator recorded. No postings. Must match events.DefaultPolicy
-- (tested).
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('CrossRegistryTermsMismatch', true, false, false, false)
ON CONFLICT (event_type) DO NOTHING;

-- +goose Down
DELETE FROM emission_policy WHERE event_type = 'CrossRegistryTermsMismatch';
