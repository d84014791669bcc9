-- +goose Up
-- Disputes over transfers recorded on this TEG (package dispute). One row
-- per dispute; a party disputes a transfer at most once. The deadlines and
-- the fee due are fixed when it opens. The ruling and its consequences
-- (compensation minted, fee charged) are written in the same row, so the
-- row's settled_at is the exactly-once guard of the consequences.
CREATE TABLE disputes (
    id                    uuid        PRIMARY KEY,
    transfer_id           uuid        NOT NULL REFERENCES transfers (id),
    complainant           text COLLATE "C" NOT NULL,
    respondent            text COLLATE "C" NOT NULL,
    claimed_units         bigint      NOT NULL CHECK (claimed_units > 0),
    evidence_ref          text        NOT NULL CHECK (length(evidence_ref) BETWEEN 1 AND 500),
    client_key            text        NOT NULL CHECK (length(client_key) BETWEEN 1 AND 200),
    status                text        NOT NULL CHECK (status IN ('awaiting_response', 'awaiting_ruling', 'ruled', 'lapsed')),
    respond_by            timestamptz NOT NULL,
    rule_by               timestamptz NOT NULL,
    fee_due_units         bigint      NOT NULL CHECK (fee_due_units >= 0),
    response_ref          text        CHECK (length(response_ref) BETWEEN 1 AND 500),
    responded_at          timestamptz,
    defaulted             boolean     NOT NULL DEFAULT false,
    outcome               text        CHECK (outcome IN ('complainant', 'respondent')),
    award_units           bigint      NOT NULL DEFAULT 0 CHECK (award_units >= 0 AND award_units <= claimed_units),
    ruling_reason         text        CHECK (length(ruling_reason) <= 1000),
    ruled_by              text,
    ruled_at              timestamptz,
    compensation_units    bigint      NOT NULL DEFAULT 0 CHECK (compensation_units >= 0),
    fee_units             bigint      NOT NULL DEFAULT 0 CHECK (fee_units >= 0 AND fee_units <= fee_due_units),
    settled_at            timestamptz,
    lapsed_at             timestamptz,
    created_at            timestamptz NOT NULL,
    CONSTRAINT disputes_not_self CHECK (complainant <> respondent),
    CONSTRAINT disputes_once_per_party UNIQUE (transfer_id, complainant),
    CONSTRAINT disputes_client_key UNIQUE (complainant, client_key),
    CONSTRAINT disputes_ruled CHECK ((status = 'ruled') = (outcome IS NOT NULL AND ruled_at IS NOT NULL)),
    CONSTRAINT disputes_settled_ruled CHECK (settled_at IS NULL OR status = 'ruled')
);
CREATE INDEX disputes_complainant_id ON disputes (complainant, id);
CREATE INDEX disputes_respondent_id ON disputes (respondent, id);

-- +goose Down
DROP TABLE disputes;
