-- name: OrganisationInsert :one
INSERT INTO organisations (id, name, created_by, created_at)
VALUES (@id, @name, @created_by, @now)
RETURNING *;

-- name: OrganisationGet :one
SELECT * FROM organisations WHERE id = @id;

-- name: OrganisationMemberInsert :one
-- A pending invitation (accepted_at NULL), or an accepted owner at creation.
INSERT INTO organisation_members (id, organisation_id, developer_id, role, invited_by, invited_at, accepted_at)
VALUES (@id, @organisation_id, @developer_id, @role, @invited_by, @now, sqlc.narg(accepted_at))
RETURNING *;

-- name: OrganisationMemberGet :one
SELECT * FROM organisation_members WHERE organisation_id = @organisation_id AND developer_id = @developer_id;

-- name: OrganisationMemberAccept :one
UPDATE organisation_members SET accepted_at = sqlc.arg(now)::timestamptz
WHERE organisation_id = @organisation_id AND developer_id = @developer_id AND accepted_at IS NULL
RETURNING *;

-- name: OrganisationMemberDelete :one
DELETE FROM organisation_members
WHERE organisation_id = @organisation_id AND developer_id = @developer_id
RETURNING *;

-- name: OrganisationMemberList :many
SELECT * FROM organisation_members
WHERE organisation_id = @organisation_id
ORDER BY invited_at, id
LIMIT sqlc.arg(max_rows)::int;

-- name: OrganisationOwnerCountForUpdate :one
-- Locks the organisation row so concurrent removals cannot drop the last
-- owner, then counts accepted owners.
SELECT (SELECT count(*) FROM organisation_members m
        WHERE m.organisation_id = o.id AND m.role = 'owner' AND m.accepted_at IS NOT NULL)::bigint AS owners
FROM organisations o WHERE o.id = @organisation_id
FOR UPDATE OF o;

-- name: OrganisationMemberCount :one
SELECT count(*)::bigint FROM organisation_members WHERE organisation_id = @organisation_id;
