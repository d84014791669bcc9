-- +goose Up
-- Reputation runs: TrustScoresPublished (one per run, with the digest of
-- the score vector) and ReputationThresholdBreached (an agent whose trust
-- fell below the enforcement floor), both authored by the EventStore
-- node, where the runs compute. Must match events.DefaultPolicy (tested).
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('TrustScoresPublished', false, false, true, false),
    ('ReputationThresholdBreached', false, false, true, false)
ON CONFLICT (event_type) DO NOTHING;

-- +goose Down
DELETE FROM emission_policy WHERE event_type IN ('TrustScoresPublished', 'ReputationThresholdBreached');
