-- +goose Up
-- StakeMatured (lock expiry of a locked staking tier): authored by the TEG.
-- Must match events.DefaultPolicy (tested).
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('StakeMatured', true, false, false, false);

-- +goose Down
DELETE FROM emission_policy WHERE event_type = 'StakeMatured';
