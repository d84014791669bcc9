package ledgerstore

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
)

// Supply operation kinds.
const (
	OpMint  = "mint"
	OpBurn  = "burn"
	OpGrant = "grant"
)

// Genesis identity: the genesis mint is the mint with this actor and key.
const (
	GenesisActor = "genesis"
	GenesisKey   = "genesis"
)

// SupplyOperation is a committed mint, burn or treasury grant.
type SupplyOperation struct {
	ID             uuid.UUID // also the journal entry's id
	Kind           string    // OpMint, OpBurn, OpGrant
	Account        string    // credited (mint: treasury, grant: the grantee) or debited (burn: treasury)
	AmountUnits    int64
	Reason         string
	Actor          string // the admin principal (or GenesisActor)
	IdempotencyKey string
	CreatedAt      time.Time
	Replayed       bool // found already committed under the same key
}

// SupplyRequest is a mint, burn or grant request by an admin.
type SupplyRequest struct {
	AmountUnits int64
	Reason      string // required, ≤ MaxReasonBytes
	Actor       string // the admin principal's subject, for the audit trail
	// IdempotencyKey is unique per (kind, actor); a retry returns the
	// original operation, a different request with it is IdempotencyReuse.
	IdempotencyKey string
	// To is the grantee of a grant (agent or developer account); ignored by
	// mint and burn, which credit/debit the treasury.
	To string
}

func (r SupplyRequest) validate() error {
	if err := ledger.ValidateAmount(r.AmountUnits); err != nil {
		return apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if r.Reason == "" {
		return apperr.New(apperr.Invalid, "reason is required")
	}
	if err := validateText("reason", r.Reason, MaxReasonBytes); err != nil {
		return err
	}
	if r.Actor == "" || len(r.Actor) > 200 {
		return apperr.New(apperr.Invalid, "actor must be 1-200 bytes")
	}
	if r.IdempotencyKey == GenesisKey && r.Actor == GenesisActor {
		return nil
	}
	return validateClientKey(r.IdempotencyKey)
}

// Mint creates AmountUnits in the treasury (issuance −, treasury +) and
// writes TokensIssued. Only the mainframe TEG may mint, and only while the
// supply gate reports a clean audit (zero delta, no reconciliation or
// netting failure). The gate is consulted before the transaction (it may
// do I/O; no transaction is held across it).
//
// Errors: Invalid, FailedPrecondition (not the mainframe; audit not
// clean), Unavailable (gate unreadable or absent), IdempotencyReuse. A retry with
// the same key returns the original (Replayed), even if the gate has since
// closed.
func (s *Store) Mint(ctx context.Context, r SupplyRequest) (SupplyOperation, error) {
	return s.supplyOp(ctx, OpMint, r, true)
}

// Burn destroys AmountUnits from the treasury (treasury −, issuance +) and
// writes TokensBurned, under the same rules as Mint; InsufficientFunds when
// the treasury's available balance is short.
func (s *Store) Burn(ctx context.Context, r SupplyRequest) (SupplyOperation, error) {
	return s.supplyOp(ctx, OpBurn, r, true)
}

// Grant moves AmountUnits from the treasury to the agent or developer
// account r.To and writes TreasuryGrant. Allowed on every registry.
// Errors: Invalid, NotFound (unknown grantee), InsufficientFunds,
// IdempotencyReuse.
func (s *Store) Grant(ctx context.Context, r SupplyRequest) (SupplyOperation, error) {
	if err := userAccount("to", r.To); err != nil {
		return SupplyOperation{}, err
	}
	return s.supplyOp(ctx, OpGrant, r, false)
}

// Genesis mints amountUnits to the treasury exactly once per ledger: the dev
// stack calls it at every start with the topology's genesis_supply_units. On
// later calls it returns the original operation (Replayed); a different
// amount is a Conflict (the configured genesis changed). It is refused on
// non-mainframe registries (FailedPrecondition). It does not consult the
// supply gate: there is no supply yet to audit.
func (s *Store) Genesis(ctx context.Context, amountUnits int64) (SupplyOperation, error) {
	r := SupplyRequest{AmountUnits: amountUnits, Reason: "genesis supply", Actor: GenesisActor, IdempotencyKey: GenesisKey}
	op, err := s.supplyOp(ctx, OpMint, r, false)
	if apperr.Is(err, apperr.IdempotencyReuse) {
		return SupplyOperation{}, apperr.New(apperr.Conflict, "genesis was already minted with a different amount")
	}
	return op, err
}

func (s *Store) supplyOp(ctx context.Context, kind string, r SupplyRequest, gated bool) (SupplyOperation, error) {
	if err := r.validate(); err != nil {
		return SupplyOperation{}, err
	}
	if kind != OpGrant && !s.mainframe {
		return SupplyOperation{}, apperr.New(apperr.FailedPrecondition,
			"%s is only allowed on the frame's mainframe TEG; registry %s is not the mainframe", kind, s.outbox.Registry)
	}
	account := ledger.AccountTreasury
	if kind == OpGrant {
		account = r.To
	}
	// A replay answers without consulting the gate.
	if op, found, err := s.supplyReplay(ctx, s.pool, kind, account, r); found || err != nil {
		return op, err
	}
	if gated {
		v, err := s.gate.SupplyVerdict(ctx)
		if err != nil {
			return SupplyOperation{}, apperr.Wrap(err, apperr.Unavailable, "supply audit unavailable; %s refused", kind)
		}
		if v.Delta != 0 {
			return SupplyOperation{}, apperr.New(apperr.FailedPrecondition,
				"%s blocked: the frame's supply audit delta is %s, not 0", kind, money.Format(v.Delta))
		}
		if len(v.Failures) > 0 {
			return SupplyOperation{}, apperr.New(apperr.FailedPrecondition,
				"%s blocked: the frame's supply audit fails: %s", kind, strings.Join(v.Failures[:min(len(v.Failures), 5)], "; "))
		}
	}
	now := s.clock()
	var out SupplyOperation
	for attempt := 0; ; attempt++ {
		err := s.db.Tx(ctx, func(tx pgx.Tx) error {
			op, found, err := s.supplyReplay(ctx, tx, kind, account, r)
			if found || err != nil {
				out = op
				return err
			}
			out, err = s.applySupply(ctx, tx, kind, account, r, now)
			return err
		})
		if err != nil && attempt == 0 && isUniqueViolation(err, "supply_operations_client_key") {
			continue
		}
		return out, err
	}
}

func (s *Store) supplyReplay(ctx context.Context, q tegdb.DBTX, kind, account string, r SupplyRequest) (SupplyOperation, bool, error) {
	row, err := s.q.SupplyOperationByKey(ctx, q, tegdb.SupplyOperationByKeyParams{Kind: kind, Actor: r.Actor, ClientKey: r.IdempotencyKey})
	if db.IsNotFound(err) {
		return SupplyOperation{}, false, nil
	}
	if err != nil {
		return SupplyOperation{}, false, err
	}
	if row.AccountID != account || row.AmountUnits != r.AmountUnits || row.Reason != r.Reason {
		return SupplyOperation{}, true, apperr.New(apperr.IdempotencyReuse, "idempotency key %q was already used for a different %s", r.IdempotencyKey, kind)
	}
	return SupplyOperation{
		ID: row.ID, Kind: row.Kind, Account: row.AccountID, AmountUnits: row.AmountUnits, Reason: row.Reason,
		Actor: row.Actor, IdempotencyKey: row.ClientKey, CreatedAt: row.CreatedAt.UTC(), Replayed: true,
	}, true, nil
}

func (s *Store) applySupply(ctx context.Context, tx pgx.Tx, kind, account string, r SupplyRequest, now time.Time) (SupplyOperation, error) {
	// Debit and credit sides of the journal entry.
	debit, credit := ledger.AccountIssuance, ledger.AccountTreasury
	event := EventTokensIssued
	switch kind {
	case OpBurn:
		debit, credit, event = ledger.AccountTreasury, ledger.AccountIssuance, EventTokensBurned
	case OpGrant:
		debit, credit, event = ledger.AccountTreasury, account, EventTreasuryGrant
	}
	dk, ck := balKey{debit, ledger.BucketLiquid}, balKey{credit, ledger.BucketLiquid}
	locked, err := s.lockBalances(ctx, tx, map[balKey]struct{}{dk: {}, ck: {}})
	if err != nil {
		return SupplyOperation{}, err
	}
	dr, cr := locked[dk], locked[ck]
	if cr == nil {
		return SupplyOperation{}, apperr.New(apperr.NotFound, "account %q not found on this registry", credit)
	}
	if dr == nil {
		return SupplyOperation{}, apperr.New(apperr.Internal, "system account %q is missing", debit)
	}
	if ledger.MayGoNegative(debit) {
		if dr.newUnits, err = money.Sub(dr.newUnits, r.AmountUnits); err != nil {
			return SupplyOperation{}, apperr.New(apperr.Invalid, "%s would overflow the supply", kind)
		}
	} else {
		if dr.available() < r.AmountUnits {
			return SupplyOperation{}, apperr.New(apperr.InsufficientFunds, "available balance of %s is %s, %s needs %s",
				debit, money.Format(dr.available()), kind, money.Format(r.AmountUnits))
		}
		dr.newUnits -= r.AmountUnits
	}
	if cr.newUnits, err = money.Add(cr.newUnits, r.AmountUnits); err != nil {
		return SupplyOperation{}, apperr.New(apperr.Invalid, "%s would overflow the balance of %s", kind, credit)
	}
	if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
		return SupplyOperation{}, err
	}
	id, err := newID()
	if err != nil {
		return SupplyOperation{}, err
	}
	postings := []ledger.Posting{
		{Account: debit, Bucket: ledger.BucketLiquid, Delta: -r.AmountUnits},
		{Account: credit, Bucket: ledger.BucketLiquid, Delta: r.AmountUnits},
	}
	if err := ledger.ValidatePostings(postings); err != nil {
		return SupplyOperation{}, apperr.Wrap(err, apperr.Internal, "unbalanced %s", kind)
	}
	if err := s.q.JournalEntryInsert(ctx, tx, tegdb.JournalEntryInsertParams{
		ID: id, Kind: kind, Accounts: []string{debit, credit}, Buckets: []string{ledger.BucketLiquid, ledger.BucketLiquid},
		Deltas: []int64{-r.AmountUnits, r.AmountUnits}, Now: now,
	}); err != nil {
		return SupplyOperation{}, mapConstraint(err)
	}
	if err := s.q.SupplyOperationInsert(ctx, tx, tegdb.SupplyOperationInsertParams{
		ID: id, Kind: kind, AccountID: account, AmountUnits: r.AmountUnits, Reason: r.Reason, Actor: r.Actor,
		ClientKey: r.IdempotencyKey, Now: now,
	}); err != nil {
		return SupplyOperation{}, err
	}
	op := SupplyOperation{ID: id, Kind: kind, Account: account, AmountUnits: r.AmountUnits, Reason: r.Reason,
		Actor: r.Actor, IdempotencyKey: r.IdempotencyKey, CreatedAt: now}
	env, err := newEvent(event, kind+"-"+id.String(), account, now, postings, supplyPayload{
		OperationID: id, Account: account, AmountUnits: r.AmountUnits, Reason: r.Reason, Actor: r.Actor,
	})
	if err != nil {
		return SupplyOperation{}, err
	}
	return op, s.outbox.Write(ctx, tx, env)
}
