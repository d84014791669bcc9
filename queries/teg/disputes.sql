-- name: DisputeInsert :exec
INSERT INTO disputes (id, transfer_id, complainant, respondent, claimed_units, evidence_ref, client_key, status,
    respond_by, rule_by, fee_due_units, created_at)
VALUES (@id, @transfer_id, @complainant, @respondent, @claimed_units, @evidence_ref, @client_key, 'awaiting_response',
    @respond_by, @rule_by, @fee_due_units, @now);

-- name: DisputeGet :one
SELECT * FROM disputes WHERE id = @id;

-- name: DisputeLock :one
SELECT * FROM disputes WHERE id = @id FOR UPDATE;

-- name: DisputeByParty :one
-- The complainant's dispute of a transfer (at most one).
SELECT * FROM disputes WHERE transfer_id = @transfer_id AND complainant = @complainant;

-- name: DisputeByKey :one
SELECT * FROM disputes WHERE complainant = @complainant AND client_key = @client_key;

-- name: DisputesByParty :many
-- A party's disputes (as complainant or respondent), by id (time order:
-- ids are UUIDv7), after the previous page's last id.
SELECT * FROM (
    (SELECT * FROM disputes c WHERE c.complainant = @party AND c.id > @after_id ORDER BY c.id LIMIT @max_rows)
    UNION ALL
    (SELECT * FROM disputes r WHERE r.respondent = @party AND r.id > @after_id ORDER BY r.id LIMIT @max_rows)
) AS d
ORDER BY d.id
LIMIT @max_rows;

-- name: DisputesAll :many
SELECT * FROM disputes WHERE id > @after_id ORDER BY id LIMIT @max_rows;

-- name: DisputeRespond :exec
UPDATE disputes SET status = 'awaiting_ruling', response_ref = @response_ref, responded_at = @now::timestamptz
WHERE id = @id;

-- name: DisputeDefault :exec
UPDATE disputes SET status = 'awaiting_ruling', defaulted = true WHERE id = @id;

-- name: DisputeRule :exec
UPDATE disputes SET status = 'ruled', outcome = @outcome, award_units = @award_units, ruling_reason = @reason,
    ruled_by = @ruled_by, ruled_at = @now::timestamptz
WHERE id = @id;

-- name: DisputeLapse :exec
UPDATE disputes SET status = 'lapsed', lapsed_at = @now::timestamptz WHERE id = @id;

-- name: DisputeSettle :exec
UPDATE disputes SET compensation_units = @compensation_units, fee_units = @fee_units, settled_at = @now::timestamptz
WHERE id = @id;

-- name: DisputeCompensationTotal :one
SELECT coalesce(sum(compensation_units), 0)::bigint FROM disputes;
