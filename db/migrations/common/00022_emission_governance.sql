-- +goose Up
-- Governance events, written by the TEG that holds the proposals, votes
-- and governed parameters. Must match events.DefaultPolicy (tested).
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('ProposalCreated', true, false, false, false),
    ('VoteCast', true, false, false, false),
    ('VoteDelegated', true, false, false, false),
    ('ProposalTallied', true, false, false, false),
    ('ProposalVetoed', true, false, false, false),
    ('ProposalEnacted', true, false, false, false),
    ('ProposalElevated', true, false, false, false)
ON CONFLICT (event_type) DO NOTHING;

-- +goose Down
DELETE FROM emission_policy WHERE event_type IN ('ProposalCreated', 'VoteCast', 'VoteDelegated',
    'ProposalTallied', 'ProposalVetoed', 'ProposalEnacted', 'ProposalElevated');
