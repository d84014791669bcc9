-- +goose Up
-- An idempotency key is unique within the registry that emitted it, not
-- frame-wide: with one key space, any registry writing to the frame's
-- topic could publish a predictable key of another registry first and get
-- the real event dropped as its duplicate. Keys were unique frame-wide
-- until now, so every existing row satisfies the new key. An event
-- squatted before this migration stays under the registry that sent it;
-- the real one was dropped then, and nothing in the log tells them apart.
-- The primary key keeps its name: ingest recognises a collision by it.
ALTER TABLE events DROP CONSTRAINT events_pkey,
    ADD CONSTRAINT events_pkey PRIMARY KEY (registry, idempotency_key);

-- +goose Down
-- Fails while two registries have an event under one key.
ALTER TABLE events DROP CONSTRAINT events_pkey,
    ADD CONSTRAINT events_pkey PRIMARY KEY (idempotency_key);
