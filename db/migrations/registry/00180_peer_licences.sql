-- +goose Up
-- A peer's licence (federation): an operator suspends, reinstates or
-- revokes it at run time, and the decision is kept with who made it and
-- why. 'active' is the only state the peer set admits. A suspended or
-- revoked row is never re-activated by a re-add (the topology at start, a
-- repeated admin add): only an explicit reinstatement of a suspended peer
-- makes it active again, and revocation is final. status_seq counts the
-- changes, so each change's event has a key of its own.
ALTER TABLE peer_registries DROP CONSTRAINT peer_registries_status_check;
ALTER TABLE peer_registries ADD CONSTRAINT peer_registries_status_check
    CHECK (status IN ('pending', 'active', 'suspended', 'revoked', 'removed'));
ALTER TABLE peer_registries
    ADD COLUMN changed_by    text   NOT NULL DEFAULT '' CHECK (length(changed_by) <= 256),
    ADD COLUMN change_reason text   NOT NULL DEFAULT '' CHECK (length(change_reason) <= 512),
    ADD COLUMN status_seq    bigint NOT NULL DEFAULT 0;

-- +goose Down
UPDATE peer_registries SET status = 'removed' WHERE status NOT IN ('active', 'removed');
ALTER TABLE peer_registries DROP COLUMN status_seq, DROP COLUMN change_reason, DROP COLUMN changed_by;
ALTER TABLE peer_registries DROP CONSTRAINT peer_registries_status_check;
ALTER TABLE peer_registries ADD CONSTRAINT peer_registries_status_check CHECK (status IN ('active', 'removed'));
