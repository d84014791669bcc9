-- +goose Up
-- The two-sided peering handshake: a peer is 'pending' until both
-- registries accepted it (this registry's admin, or its auto-accept
-- policy, here; the other registry there), then 'active'. Rows that exist
-- already were licensed by both operators through the topology.
ALTER TABLE peer_registries
    ADD COLUMN accepted_here  boolean NOT NULL DEFAULT true,
    ADD COLUMN accepted_there boolean NOT NULL DEFAULT true;

-- +goose Down
ALTER TABLE peer_registries DROP COLUMN accepted_there, DROP COLUMN accepted_here;
