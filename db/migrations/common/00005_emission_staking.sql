-- +goose Up
-- Staking events: authored by the TEG, which owns the money.
-- Must match events.DefaultPolicy (tested).
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('TokensStaked', true, false, false, false),
    ('UnstakeRequested', true, false, false, false),
    ('TokensUnstaked', true, false, false, false),
    ('StakingRewardPaid', true, false, false, false),
    ('StakeSlashed', true, false, false, false),
    ('DelegationChanged', true, false, false, false),
    ('ValidatorUpdated', true, false, false, false);

-- +goose Down
DELETE FROM emission_policy WHERE event_type IN ('TokensStaked', 'UnstakeRequested', 'TokensUnstaked',
    'StakingRewardPaid', 'StakeSlashed', 'DelegationChanged', 'ValidatorUpdated');
