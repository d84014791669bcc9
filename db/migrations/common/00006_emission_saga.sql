-- +goose Up
-- Cross-registry transfer events. The money legs travel in
-- side-specific events with their own keys; TokensTransferred
-- (xfer-<transfer id>) is emitted by both TEGs without postings, so the
-- EventStore's deduplication of that key never drops a leg.
--   CrossRegistryDebited  xfer-<id>-debit   source: sender −amount, transit:<target> +amount
--   CrossRegistryCredited xfer-<id>-credit  target: transit:<source> −amount, receiver +net, fee_collector +fee
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker) VALUES
    ('CrossRegistryCredited', true, false, false, false),
    ('CrossRegistryDebited', true, false, false, false)
ON CONFLICT (event_type) DO NOTHING;

-- +goose Down
DELETE FROM emission_policy WHERE event_type IN ('CrossRegistryCredited', 'CrossRegistryDebited');
