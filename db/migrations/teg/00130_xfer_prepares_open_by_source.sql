-- +goose Up
-- A participant prepares a peer's transfer only while the peer's exposure
-- (what it credited here through transit:<peer>, net) plus every transfer
-- it already has prepared here stays within its cap. That sum is read on
-- each prepare call: an index of the open prepares by source, carrying the
-- amounts, answers it without visiting the table.
CREATE INDEX xfer_prepares_open_by_source ON xfer_prepares (source_registry) INCLUDE (amount_units)
    WHERE status = 'prepared';

-- +goose Down
DROP INDEX xfer_prepares_open_by_source;
