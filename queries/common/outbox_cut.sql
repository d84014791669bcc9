-- The outbox cut of a balance checkpoint (db/outbox_cut.go): in the
-- checkpoint's own transaction, holding outbox_relay_state locked, every
-- committed row still queued is numbered, so that the numbers up to the
-- cut are exactly the transactions the checkpoint's snapshot sees.

-- name: OutboxQueueClaimAllNowait :many
-- Every queued row visible to the snapshot, at most max_rows (the caller
-- asks for one more than it accepts, to tell a backlog apart). NOWAIT: a
-- row the relay is numbering right now fails the statement at once (the
-- caller retries) instead of waiting for a relay that waits for us.
DELETE FROM outbox_queue
WHERE id IN (SELECT q.id FROM outbox_queue AS q ORDER BY q.id LIMIT @max_rows FOR UPDATE NOWAIT)
RETURNING id;
