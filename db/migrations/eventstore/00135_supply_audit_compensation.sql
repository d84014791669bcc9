-- +goose Up
-- Dispute compensation is issuance with its own audit term: value the
-- mainframe minted to a complainant the tribunal ruled for
-- (DisputeCompensationMinted), kept apart from tokens_issued so the audit
-- shows how much of the supply courts created. net_supply =
-- tokens_issued + compensation_issued − tokens_destroyed + transit_net.
ALTER TABLE supply_audit ADD COLUMN compensation_issued bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE supply_audit DROP COLUMN compensation_issued;
