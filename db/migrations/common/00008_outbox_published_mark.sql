-- +goose Up
-- Publication is tracked by one high-water mark instead of a published_at
-- stamp per row: the relay assigns gap-free sequence numbers and publishes
-- in sequence order, so "published" is exactly source_seq <= published_seq.
-- Stamping every row was a second non-HOT update of each outbox row (a
-- full copy of its envelope plus entries in every index), about a sixth of
-- the database's time under cross-registry load. published_at stays, no
-- longer written, for the down migration.
ALTER TABLE outbox_relay_state ADD COLUMN published_seq bigint NOT NULL DEFAULT 0 CHECK (published_seq >= 0);
UPDATE outbox_relay_state SET published_seq = coalesce(
    (SELECT min(source_seq) - 1 FROM outbox WHERE published_at IS NULL AND source_seq IS NOT NULL),
    next_seq - 1);
ALTER TABLE outbox_relay_state ADD CONSTRAINT outbox_relay_published_assigned CHECK (published_seq < next_seq);
DROP INDEX outbox_unpublished;
DROP INDEX outbox_published_at;

-- +goose Down
UPDATE outbox SET published_at = now()
WHERE published_at IS NULL AND source_seq <= (SELECT published_seq FROM outbox_relay_state);
CREATE INDEX outbox_unpublished ON outbox (source_seq) WHERE published_at IS NULL AND source_seq IS NOT NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
ALTER TABLE outbox_relay_state DROP CONSTRAINT outbox_relay_published_assigned;
ALTER TABLE outbox_relay_state DROP COLUMN published_seq;
