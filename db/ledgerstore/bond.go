package ledgerstore

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
)

// Bond move kinds (bond_moves.kind; the journal entry kind is "bond_" + kind).
const (
	BondLock    = "lock"    // developer liquid → agent locked_bond
	BondRelease = "release" // agent locked_bond → agent liquid (maturity)
	BondForfeit = "forfeit" // agent locked_bond → treasury liquid
	BondVoid    = "void"    // agent locked_bond → developer liquid
)

// Bond event types (bond-<kind>-<move id>).
const (
	EventReputationBondLocked    = events.TypeReputationBondLocked
	EventReputationBondMatured   = events.TypeReputationBondMatured
	EventReputationBondForfeited = events.TypeReputationBondForfeited
	EventReputationBondVoided    = events.TypeReputationBondVoided
)

// BondMove is a committed reputation-bond movement.
type BondMove struct {
	ID             uuid.UUID // also the journal entry's id
	Kind           string    // BondLock, BondRelease, BondForfeit, BondVoid
	AgentDID       string
	CounterAccount string // developer wallet (lock, void), the agent (release), treasury (forfeit)
	AmountUnits    int64
	IdempotencyKey string
	CreatedAt      time.Time
	Replayed       bool // found already committed under the same key
}

type bondPayload struct {
	MoveID         uuid.UUID `json:"move_id"`
	AgentDID       string    `json:"agent_did"`
	CounterAccount string    `json:"counter_account"`
	AmountUnits    int64     `json:"amount_units"`
}

// LockBond moves amountUnits from the developer wallet devAccount (liquid,
// available balance) into the agent's locked_bond bucket and writes
// ReputationBondLocked. Errors: Invalid, NotFound (agent or developer
// account missing), InsufficientFunds (the wallet is short; nothing is
// written), IdempotencyReuse.
func (s *Store) LockBond(ctx context.Context, agentDID, devAccount string, amountUnits int64, key string) (BondMove, error) {
	return s.bondMove(ctx, BondLock, agentDID, devAccount, amountUnits, key)
}

// ReleaseBond moves the bond from the agent's locked_bond bucket to its
// liquid bucket (maturity) and writes ReputationBondMatured.
func (s *Store) ReleaseBond(ctx context.Context, agentDID string, amountUnits int64, key string) (BondMove, error) {
	return s.bondMove(ctx, BondRelease, agentDID, agentDID, amountUnits, key)
}

// ForfeitBond moves the bond from the agent's locked_bond bucket to the
// treasury and writes ReputationBondForfeited.
func (s *Store) ForfeitBond(ctx context.Context, agentDID string, amountUnits int64, key string) (BondMove, error) {
	return s.bondMove(ctx, BondForfeit, agentDID, ledger.AccountTreasury, amountUnits, key)
}

// VoidBond returns the bond from the agent's locked_bond bucket to the
// developer wallet it came from and writes ReputationBondVoided.
func (s *Store) VoidBond(ctx context.Context, agentDID, devAccount string, amountUnits int64, key string) (BondMove, error) {
	return s.bondMove(ctx, BondVoid, agentDID, devAccount, amountUnits, key)
}

// TransferCount is the number of transfers agentDID sent (the bond's
// activity criterion).
func (s *Store) TransferCount(ctx context.Context, agentDID string) (int64, error) {
	return s.q.TransfersSentCount(ctx, s.pool, agentDID)
}

// BondMoves lists the bond movements of agentDID, oldest first.
func (s *Store) BondMoves(ctx context.Context, agentDID string) ([]BondMove, error) {
	rows, err := s.q.BondMovesByAgent(ctx, s.pool, agentDID)
	if err != nil {
		return nil, err
	}
	out := make([]BondMove, 0, len(rows))
	for _, r := range rows {
		out = append(out, bondMoveFromRow(r, false))
	}
	return out, nil
}

func bondMoveFromRow(r tegdb.BondMove, replayed bool) BondMove {
	return BondMove{ID: r.ID, Kind: r.Kind, AgentDID: r.AgentDid, CounterAccount: r.CounterAccount, AmountUnits: r.AmountUnits,
		IdempotencyKey: r.ClientKey, CreatedAt: r.CreatedAt.UTC(), Replayed: replayed}
}

func validateBondMove(kind, agentDID, counter string, amountUnits int64, key string) error {
	k, err := ledger.KindOf(agentDID)
	if err != nil {
		return apperr.New(apperr.Invalid, "agent: %s", err.Error())
	}
	if k != ledger.KindAgent {
		return apperr.New(apperr.Invalid, "agent: %q is a %s account, not an agent", agentDID, k)
	}
	if kind == BondLock || kind == BondVoid {
		if k, err := ledger.KindOf(counter); err != nil || k != ledger.KindDeveloper {
			return apperr.New(apperr.Invalid, "developer account: %q is not a developer wallet", counter)
		}
	}
	if err := ledger.ValidateAmount(amountUnits); err != nil {
		return apperr.New(apperr.Invalid, "%s", err.Error())
	}
	return validateClientKey(key)
}

func (s *Store) bondMove(ctx context.Context, kind, agentDID, counter string, amountUnits int64, key string) (BondMove, error) {
	if err := validateBondMove(kind, agentDID, counter, amountUnits, key); err != nil {
		return BondMove{}, err
	}
	if m, found, err := s.bondReplay(ctx, s.pool, kind, agentDID, counter, amountUnits, key); found || err != nil {
		return m, err
	}
	now := s.clock()
	var out BondMove
	for attempt := 0; ; attempt++ {
		err := s.db.Tx(ctx, func(tx pgx.Tx) error {
			m, found, err := s.bondReplay(ctx, tx, kind, agentDID, counter, amountUnits, key)
			if found || err != nil {
				out = m
				return err
			}
			out, err = s.applyBond(ctx, tx, kind, agentDID, counter, amountUnits, key, now)
			return err
		})
		if err != nil && attempt == 0 && isUniqueViolation(err, "bond_moves_client_key") {
			continue // a concurrent twin committed first: answer as a replay
		}
		return out, err
	}
}

func (s *Store) bondReplay(ctx context.Context, q tegdb.DBTX, kind, agentDID, counter string, amountUnits int64, key string) (BondMove, bool, error) {
	row, err := s.q.BondMoveByKey(ctx, q, key)
	if db.IsNotFound(err) {
		return BondMove{}, false, nil
	}
	if err != nil {
		return BondMove{}, false, err
	}
	if row.Kind != kind || row.AgentDid != agentDID || row.CounterAccount != counter || row.AmountUnits != amountUnits {
		return BondMove{}, true, apperr.New(apperr.IdempotencyReuse, "idempotency key %q was already used for a different bond move", key)
	}
	return bondMoveFromRow(row, true), true, nil
}

func (s *Store) applyBond(ctx context.Context, tx pgx.Tx, kind, agentDID, counter string, amountUnits int64, key string, now time.Time) (BondMove, error) {
	bond := balKey{agentDID, ledger.BucketLockedBond}
	other := balKey{counter, ledger.BucketLiquid}
	debit, credit := bond, other // release, forfeit, void
	event := map[string]string{
		BondLock: EventReputationBondLocked, BondRelease: EventReputationBondMatured,
		BondForfeit: EventReputationBondForfeited, BondVoid: EventReputationBondVoided,
	}[kind]
	if kind == BondLock {
		debit, credit = other, bond
		// The agent's locked_bond row may not exist yet. Make sure the agent
		// exists first: balances.account_id references accounts.
		if _, err := s.q.AccountGet(ctx, tx, agentDID); err != nil {
			return BondMove{}, db.NotFound(err, "account %q not found on this registry", agentDID)
		}
		if err := s.q.BalanceEnsure(ctx, tx, tegdb.BalanceEnsureParams{AccountID: agentDID, Bucket: ledger.BucketLockedBond, Now: now}); err != nil {
			return BondMove{}, err
		}
	}
	// lockBalances locks in (account, bucket) order; the fee_collector is
	// never involved.
	locked, err := s.lockBalances(ctx, tx, map[balKey]struct{}{debit: {}, credit: {}})
	if err != nil {
		return BondMove{}, err
	}
	dr, cr := locked[debit], locked[credit]
	if cr == nil {
		return BondMove{}, apperr.New(apperr.NotFound, "account %q not found on this registry", credit.account)
	}
	if dr == nil {
		if kind == BondLock {
			return BondMove{}, apperr.New(apperr.NotFound, "account %q not found on this registry", debit.account)
		}
		return BondMove{}, apperr.New(apperr.NotFound, "agent %q holds no reputation bond", agentDID)
	}
	if dr.available() < amountUnits {
		if kind == BondLock {
			return BondMove{}, apperr.New(apperr.InsufficientFunds, "available balance of %s is %s, the reputation bond needs %s",
				debit.account, money.Format(dr.available()), money.Format(amountUnits))
		}
		// A twin of this move (same key: two workflows watching one bond)
		// may have committed while we waited for the balance lock; this
		// statement sees it, and the answer is its replay.
		if m, found, err := s.bondReplay(ctx, tx, kind, agentDID, counter, amountUnits, key); found || err != nil {
			return m, err
		}
		return BondMove{}, apperr.New(apperr.NotFound, "agent %q holds %s in locked_bond, not the %s bond",
			agentDID, money.Format(dr.available()), money.Format(amountUnits))
	}
	dr.newUnits -= amountUnits
	if cr.newUnits, err = money.Add(cr.newUnits, amountUnits); err != nil {
		return BondMove{}, apperr.New(apperr.Invalid, "bond %s would overflow the balance of %s", kind, credit.account)
	}
	if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
		return BondMove{}, err
	}
	id, err := newID()
	if err != nil {
		return BondMove{}, err
	}
	postings := []ledger.Posting{
		{Account: debit.account, Bucket: debit.bucket, Delta: -amountUnits},
		{Account: credit.account, Bucket: credit.bucket, Delta: amountUnits},
	}
	if err := ledger.ValidatePostings(postings); err != nil {
		return BondMove{}, apperr.Wrap(err, apperr.Internal, "unbalanced bond %s", kind)
	}
	if err := s.q.JournalEntryInsert(ctx, tx, tegdb.JournalEntryInsertParams{
		ID: id, Kind: "bond_" + kind, Accounts: []string{debit.account, credit.account},
		Buckets: []string{debit.bucket, credit.bucket}, Deltas: []int64{-amountUnits, amountUnits}, Now: now,
	}); err != nil {
		return BondMove{}, mapConstraint(err)
	}
	if err := s.q.BondMoveInsert(ctx, tx, tegdb.BondMoveInsertParams{
		ID: id, Kind: kind, AgentDid: agentDID, CounterAccount: counter, AmountUnits: amountUnits, ClientKey: key, Now: now,
	}); err != nil {
		return BondMove{}, err
	}
	m := BondMove{ID: id, Kind: kind, AgentDID: agentDID, CounterAccount: counter, AmountUnits: amountUnits, IdempotencyKey: key, CreatedAt: now}
	env, err := newEvent(event, "bond-"+kind+"-"+id.String(), agentDID, now, postings, bondPayload{
		MoveID: id, AgentDID: agentDID, CounterAccount: counter, AmountUnits: amountUnits,
	})
	if err != nil {
		return BondMove{}, err
	}
	return m, s.outbox.Write(ctx, tx, env)
}
