-- +goose Up
-- Lock expiry (SPEC §6.6): the lock-expiry workflow (staking-lock-<position>)
-- records when a locked position's term has ended and it became
-- withdrawable (event StakeMatured). The unstake rule itself stays on
-- unlock_at, so a late or missing workflow never keeps an owner's money
-- locked; the daily reward run marks overdue ones (the safety net).
ALTER TABLE stake_positions ADD COLUMN matured_at timestamptz;
ALTER TABLE stake_positions ADD CONSTRAINT stake_positions_matured_after_term
    CHECK (matured_at IS NULL OR (unlock_at IS NOT NULL AND matured_at >= unlock_at));
-- The safety net's scan: open locked positions not yet marked, by term end.
-- status, unlock_at and matured_at do not change on reward payments, so the
-- daily principal updates stay HOT.
CREATE INDEX stake_positions_maturity_due ON stake_positions (unlock_at, id)
    WHERE status = 'active' AND unlock_at IS NOT NULL AND matured_at IS NULL;

-- +goose Down
DROP INDEX stake_positions_maturity_due;
ALTER TABLE stake_positions DROP CONSTRAINT stake_positions_matured_after_term;
ALTER TABLE stake_positions DROP COLUMN matured_at;
