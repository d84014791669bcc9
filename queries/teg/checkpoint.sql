-- Balance checkpoints (db/ledgerstore/checkpoint.go).

-- name: BalancesPage :many
-- One page of every balance in (account_id, bucket) order (COLLATE "C":
-- byte order, the order the digest is computed in), after the given key.
SELECT account_id, bucket, units FROM balances
WHERE (account_id, bucket) > (@after_account::text, @after_bucket::text)
ORDER BY account_id, bucket
LIMIT @max_rows;

-- name: BalanceCheckpointInsert :exec
INSERT INTO balance_checkpoints (covers_seq, taken_at, accounts, digest)
VALUES (@covers_seq, @taken_at, @accounts, @digest);

-- name: BalanceCheckpointLast :one
SELECT covers_seq, taken_at, accounts, digest FROM balance_checkpoints
ORDER BY covers_seq DESC LIMIT 1;
