-- +goose Up
-- Reputation bonds (whitepaper §5.5). Creating an agent
-- locks the bond from the developer wallet into the agent's locked_bond
-- bucket; the BondMaturation workflow later releases it to the agent's
-- liquid bucket (maturity), forfeits it to the treasury (early
-- deregistration) or voids it back to the developer (the agent was never
-- created). Each move is one journal entry and one bond_moves row.

ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_kind_check;
ALTER TABLE journal_entries ADD CONSTRAINT journal_entries_kind_check CHECK (kind IN (
    'transfer', 'hold_post', 'mint', 'burn', 'grant',
    'bond_lock', 'bond_release', 'bond_forfeit', 'bond_void'));

-- One row per bond movement. client_key is the idempotency key (derived
-- from the agent's DID by the callers: bond-lock-<did>, bond-mature-<did>,
-- ...): a retry finds the row and moves nothing.
CREATE TABLE bond_moves (
    id              uuid        PRIMARY KEY, -- = journal_entries.id
    kind            text        NOT NULL CHECK (kind IN ('lock', 'release', 'forfeit', 'void')),
    agent_did       text COLLATE "C" NOT NULL,
    -- The other side of the move: the developer wallet (lock, void), the
    -- agent itself (release) or the treasury (forfeit).
    counter_account text COLLATE "C" NOT NULL,
    amount_units    bigint      NOT NULL CHECK (amount_units > 0),
    client_key      text        NOT NULL CHECK (length(client_key) BETWEEN 1 AND 200),
    created_at      timestamptz NOT NULL,
    CONSTRAINT bond_moves_client_key UNIQUE (client_key)
);
CREATE INDEX bond_moves_agent ON bond_moves (agent_did, created_at);

-- +goose Down
DROP TABLE bond_moves;
ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_kind_check;
ALTER TABLE journal_entries ADD CONSTRAINT journal_entries_kind_check CHECK (
    kind IN ('transfer', 'hold_post', 'mint', 'burn', 'grant'));
