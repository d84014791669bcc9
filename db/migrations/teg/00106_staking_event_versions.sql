-- +goose Up
-- Per-row change counters, so the events of validator updates and
-- delegation changes get idempotency keys from business identity
-- ("validator-<did>-v<n>", "delegation-<position>-v<n>") rather than from a
-- clock reading, which two changes within one microsecond would share.
ALTER TABLE staking_validators ADD COLUMN version bigint NOT NULL DEFAULT 1 CHECK (version >= 1);
ALTER TABLE stake_positions ADD COLUMN delegation_version bigint NOT NULL DEFAULT 0 CHECK (delegation_version >= 0);

-- +goose Down
ALTER TABLE stake_positions DROP COLUMN delegation_version;
ALTER TABLE staking_validators DROP COLUMN version;
