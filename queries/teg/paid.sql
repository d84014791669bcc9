-- name: IdempotencyKeyInsertDone :execrows
-- A complete idempotency record (the stored response) written in the same
-- transaction as the business step it answers: paid-call routes fold the
-- claim and the stored response into that step's commit. 0 rows: the key
-- is already recorded (the caller rolls back and answers from it).
INSERT INTO idempotency_keys (scope, key, request_hash, method, path, status_code, response_body, created_at, completed_at)
VALUES (@scope, @key, @request_hash, @method, @path, @status_code, @response_body, @now, @now)
ON CONFLICT (scope, key) DO NOTHING;

-- name: IdempotencyKeyGet :one
SELECT k.request_hash, k.method, k.path, k.status_code, k.response_body, k.created_at
FROM idempotency_keys AS k
WHERE k.scope = @scope AND k.key = @key;

-- name: PaidHoldReserve :execrows
-- A payment token's reservation in one statement: adds amount to the
-- payer's held units if its available balance covers it and the receiving
-- account exists. 0 rows: one of them is not so (or the payer is
-- unknown); the caller finds out which. The row lock it takes is the one
-- every hold and transfer of the payer takes.
UPDATE balances AS b
SET held_units = b.held_units + @amount::bigint, updated_at = @now
WHERE b.account_id = @account AND b.bucket = 'liquid' AND b.units - b.held_units >= @amount::bigint
    AND EXISTS (SELECT 1 FROM accounts AS a WHERE a.id = @receiver);

-- name: PaidHoldInsertRecorded :execrows
-- HoldInsert and IdempotencyKeyInsertDone in one statement (one round
-- trip on the paid-call path). A used hold key still fails the statement
-- (holds_client_key); 0 rows: the idempotency key is already recorded.
WITH h AS (
    INSERT INTO holds (id, account_id, receiver, amount_units, status, memo, client_key, expires_at, created_at, updated_at)
    VALUES (@id, @account_id, @receiver, @amount_units, 'active', @memo, @client_key, @expires_at, @now, @now)
    RETURNING id
)
INSERT INTO idempotency_keys (scope, key, request_hash, method, path, status_code, response_body, created_at, completed_at)
SELECT @scope::text, @key::text, @request_hash::bytea, @method::text, @path::text, @status_code::int, @response_body::bytea, @now, @now
FROM h
ON CONFLICT (scope, key) DO NOTHING;
