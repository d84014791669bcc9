-- +goose Up
-- Paid agent calls: the payer's TEG writes PaymentTokenIssued,
-- PaymentSettled and PaymentReleased in the transactions that place, post
-- and void the token's hold. No postings of their own (the hold events and
-- the transfer carry them). Must match events.DefaultPolicy (tested).
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('PaymentTokenIssued', true, false, false, false),
    ('PaymentSettled', true, false, false, false),
    ('PaymentReleased', true, false, false, false)
ON CONFLICT (event_type) DO NOTHING;

-- +goose Down
DELETE FROM emission_policy WHERE event_type IN ('PaymentTokenIssued', 'PaymentSettled', 'PaymentReleased');
