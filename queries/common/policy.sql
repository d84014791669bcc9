-- name: EmissionPolicyList :many
SELECT event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker, updated_at, updated_by
FROM emission_policy ORDER BY event_type;

-- name: EmissionPolicyUpsert :one
INSERT INTO emission_policy (event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker, updated_at, updated_by)
VALUES (@event_type, @emit_from_teg, @emit_from_registry, @emit_from_eventstore, @emit_from_worker, @now, @updated_by)
ON CONFLICT (event_type) DO UPDATE SET
    emit_from_teg = excluded.emit_from_teg,
    emit_from_registry = excluded.emit_from_registry,
    emit_from_eventstore = excluded.emit_from_eventstore,
    emit_from_worker = excluded.emit_from_worker,
    updated_at = excluded.updated_at,
    updated_by = excluded.updated_by
RETURNING event_type, emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker, updated_at, updated_by;
