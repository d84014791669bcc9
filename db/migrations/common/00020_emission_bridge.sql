-- +goose Up
-- Cross-frame bridge events, all authored by the mainframe TEG (keys
-- bridge-<transfer id>-<step>). Must match events.DefaultPolicy (tested).
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('BridgeLocked', true, false, false, false),
    ('BridgeUnlocked', true, false, false, false),
    ('BridgeReleased', true, false, false, false),
    ('WrappedMinted', true, false, false, false),
    ('WrappedBurned', true, false, false, false),
    ('WrappedReminted', true, false, false, false)
ON CONFLICT (event_type) DO NOTHING;

-- +goose Down
DELETE FROM emission_policy WHERE event_type IN
    ('BridgeLocked', 'BridgeUnlocked', 'BridgeReleased', 'WrappedMinted', 'WrappedBurned', 'WrappedReminted');
