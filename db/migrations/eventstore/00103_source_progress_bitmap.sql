-- +goose Up
-- Out-of-order arrivals are remembered as a bitmap instead of an array of
-- sequence numbers. Kafka partitions interleave a source's events, so
-- under load tens of thousands of them sit above the high-water mark; the
-- array (8 bytes each, rewritten by every batch) cost ~47 ms of Postgres
-- time per batch at 1,000,000 events. Bit i of pending_bits (little-endian
-- 64-bit words) says sequence number pending_base + i has arrived. The old
-- column is read once for rows written before this migration and then
-- left empty.
ALTER TABLE source_progress
    ADD COLUMN pending_base bigint NOT NULL DEFAULT 1,
    ADD COLUMN pending_bits bytea  NOT NULL DEFAULT '';

-- +goose Down
-- Sequence numbers kept only in the bitmap are forgotten: the EventStore
-- then sees them as a gap and the source re-publishes them (idempotent).
ALTER TABLE source_progress DROP COLUMN pending_bits, DROP COLUMN pending_base;
