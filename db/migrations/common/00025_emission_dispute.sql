-- +goose Up
-- Disputes (package dispute): the TEG that records a dispute authors
-- every event of it, including the compensation it mints and the fee it
-- charges. Must match events.DefaultPolicy (tested).
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('DisputeOpened', true, false, false, false),
    ('DisputeResponded', true, false, false, false),
    ('DisputeResponseMissed', true, false, false, false),
    ('DisputeRuled', true, false, false, false),
    ('DisputeLapsed', true, false, false, false),
    ('DisputeCompensationMinted', true, false, false, false),
    ('DisputeFeeCharged', true, false, false, false)
ON CONFLICT (event_type) DO NOTHING;

-- +goose Down
DELETE FROM emission_policy WHERE event_type IN ('DisputeOpened', 'DisputeResponded', 'DisputeResponseMissed',
    'DisputeRuled', 'DisputeLapsed', 'DisputeCompensationMinted', 'DisputeFeeCharged');
