-- name: RevokedTokenInsert :exec
INSERT INTO revoked_tokens (jti, subject, revoked_at, expires_at)
VALUES (@jti, @subject, @now, @expires_at)
ON CONFLICT (jti) DO NOTHING;

-- name: RevokedTokenSweep :execrows
-- Forgets revocations of tokens that have expired anyway; bounded per call.
DELETE FROM revoked_tokens AS r
USING (
    SELECT o.jti FROM revoked_tokens AS o
    WHERE o.expires_at < @now
    ORDER BY o.expires_at
    LIMIT sqlc.arg(max_rows)::int
) AS old
WHERE r.jti = old.jti;
