-- +goose Up
-- BalanceCheckpoint: a TEG's balances as of an outbox sequence number,
-- which the EventStore reconciles its projection with. Authored by the
-- TEG only. Must match events.DefaultPolicy (tested).
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('BalanceCheckpoint', true, false, false, false)
ON CONFLICT (event_type) DO NOTHING;

-- +goose Down
DELETE FROM emission_policy WHERE event_type = 'BalanceCheckpoint';
