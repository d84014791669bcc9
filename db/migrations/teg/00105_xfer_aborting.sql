-- +goose Up
-- Cross-registry abort keeps the sender's hold until the target
-- acknowledged the abort: the decision abort moves a transfer to
-- 'aborting' (the decision log already answers "abort"; the hold stays
-- active, the funds reserved), and only the saga's own void after the
-- target's acknowledgement moves it to 'aborted'. A saga parked in
-- CompensationFailed therefore still shows the reservation.
ALTER TABLE xfers DROP CONSTRAINT xfers_status_check;
ALTER TABLE xfers ADD CONSTRAINT xfers_status_check
    CHECK (status IN ('pending', 'committing', 'committed', 'aborting', 'aborted'));
-- Unsettled transfers by age (the batcher's crash recovery) now include
-- the aborting ones: a saga that ended without its void is restarted.
DROP INDEX xfers_pending;
CREATE INDEX xfers_pending ON xfers (created_at) WHERE status IN ('pending', 'committing', 'aborting');

-- +goose Down
DROP INDEX xfers_pending;
CREATE INDEX xfers_pending ON xfers (created_at) WHERE status IN ('pending', 'committing');
UPDATE xfers SET status = 'aborted' WHERE status = 'aborting';
ALTER TABLE xfers DROP CONSTRAINT xfers_status_check;
ALTER TABLE xfers ADD CONSTRAINT xfers_status_check
    CHECK (status IN ('pending', 'committing', 'committed', 'aborted'));
