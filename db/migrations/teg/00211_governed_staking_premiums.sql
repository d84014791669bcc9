-- +goose Up
-- Each staking tier's APY premium as a governed parameter (was build-time
-- in staking.Tiers, whose values seed it): read by the live APY table and
-- the daily reward run, changed only by an enacted proposal
-- (governance change staking_premium).
CREATE TABLE governed_staking_premiums (
    tier        text        PRIMARY KEY,
    premium_bps bigint      NOT NULL CHECK (premium_bps BETWEEN 0 AND 2000),
    proposal_id uuid,       -- the enacted proposal that set it (NULL: the default)
    updated_at  timestamptz NOT NULL
);
INSERT INTO governed_staking_premiums (tier, premium_bps, updated_at) VALUES
    ('flexible', 0, now()), ('30d', 140, now()), ('90d', 280, now()), ('180d', 390, now()), ('365d', 520, now());

-- +goose Down
DROP TABLE governed_staking_premiums;
