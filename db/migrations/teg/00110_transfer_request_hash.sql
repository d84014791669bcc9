-- +goose Up
-- The HTTP request a transfer answered (sha256 of method, path and body, as
-- the idempotency middleware hashes it), for transfers made through
-- POST /transfers. The transfer row is then that request's idempotency
-- record: a retry with the same Idempotency-Key finds it by the business
-- key (sender, client_key) and replays it when the hash matches (409 when
-- it does not), so a successful transfer needs no separate claim and
-- stored-response commits. NULL for transfers made by activities and hold
-- posts (their replays compare the parameters).
ALTER TABLE transfers ADD COLUMN request_hash bytea CHECK (length(request_hash) = 32);

-- +goose Down
ALTER TABLE transfers DROP COLUMN request_hash;
