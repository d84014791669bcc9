package ledgerstore

import (
	"context"
	"fmt"
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

// HoldStatus is the state of a hold: active → posted | voided | expired.
type HoldStatus string

// Hold statuses.
const (
	HoldActive  HoldStatus = "active"
	HoldPosted  HoldStatus = "posted"
	HoldVoided  HoldStatus = "voided"
	HoldExpired HoldStatus = "expired"
)

// Hold is a two-phase transfer: AmountUnits of From's liquid balance are
// reserved (not available) until the hold is posted to To, voided, or
// expires.
type Hold struct {
	ID             uuid.UUID
	From, To       string
	AmountUnits    int64
	PostedUnits    int64 // once posted: the amount moved (≤ AmountUnits)
	Status         HoldStatus
	Memo           string
	IdempotencyKey string
	TransferID     *uuid.UUID // once posted: the transfer it made
	ExpiresAt      time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Replayed       bool // this call found the hold already in the requested state
}

func holdFromRow(r tegdb.Hold) Hold {
	return Hold{
		ID: r.ID, From: r.AccountID, To: r.Receiver, AmountUnits: r.AmountUnits, PostedUnits: r.PostedUnits,
		Status: HoldStatus(r.Status), Memo: r.Memo, IdempotencyKey: r.ClientKey, TransferID: r.TransferID,
		ExpiresAt: r.ExpiresAt.UTC(), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// HoldRequest reserves funds.
type HoldRequest struct {
	From        string // agent or developer account whose liquid funds are reserved
	To          string // where a post sends them: agent, developer or transit account
	AmountUnits int64
	Memo        string
	// ExpiresAt must lie in (now, now + MaxHoldTTL]; an active hold past it
	// is voided by ExpireHolds and can no longer be posted.
	ExpiresAt time.Time
	// IdempotencyKey is unique per From: retrying with it returns the
	// original hold; reusing it for a different hold is IdempotencyReuse.
	IdempotencyKey string
}

func (r HoldRequest) validate(now time.Time) error {
	if err := userAccount("from", r.From); err != nil {
		return err
	}
	k, err := ledger.KindOf(r.To)
	if err != nil {
		return apperr.New(apperr.Invalid, "to: %s", err.Error())
	}
	if !ledger.IsUserKind(k) && k != ledger.KindTransit {
		return apperr.New(apperr.Invalid, "to: holds cannot be posted to %s account %q", k, r.To)
	}
	if r.From == r.To {
		return apperr.New(apperr.Invalid, "a hold cannot pay the reserving account itself")
	}
	if err := ledger.ValidateAmount(r.AmountUnits); err != nil {
		return apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if !r.ExpiresAt.After(now) || r.ExpiresAt.Sub(now) > MaxHoldTTL {
		return apperr.New(apperr.Invalid, "expiry must be after now and at most %s ahead", MaxHoldTTL)
	}
	if err := validateText("memo", r.Memo, MaxMemoBytes); err != nil {
		return err
	}
	return validateClientKey(r.IdempotencyKey)
}

// PlaceHold reserves AmountUnits of From's available balance (liquid −
// active holds) in one transaction that also writes HoldPlaced. Errors:
// Invalid, NotFound (unknown From or To), InsufficientFunds,
// IdempotencyReuse. A retry with the same key returns the original hold
// (Replayed), whatever its state now.
func (s *Store) PlaceHold(ctx context.Context, r HoldRequest) (Hold, error) {
	return s.placeHold(ctx, r, nil)
}

func (s *Store) placeHold(ctx context.Context, r HoldRequest, extra HoldEvents) (Hold, error) {
	now := s.clock()
	r.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Microsecond)
	if err := r.validate(now); err != nil {
		return Hold{}, err
	}
	return s.insertHold(ctx, r, extra, now)
}

// insertHold is placeHold after validation (r.IdempotencyKey may be a
// store-made key).
func (s *Store) insertHold(ctx context.Context, r HoldRequest, extra HoldEvents, now time.Time) (Hold, error) {
	var out Hold
	for attempt := 0; ; attempt++ {
		// Generic plans, as for transfer batches (batchTxOptions): every
		// statement here is a key probe whose plan does not depend on the
		// values, and paid calls place a hold per call.
		err := s.db.TxOpts(ctx, batchTxOptions, func(tx pgx.Tx) error {
			// Replay check before locking (cheap retries) and again after:
			// the sender's balance lock serialises its holds, and under
			// read committed the second check sees a duplicate that
			// committed while this transaction waited for the lock.
			if found, err := s.holdReplay(ctx, tx, r, &out); found || err != nil {
				return err
			}
			if _, err := s.q.AccountGet(ctx, tx, r.To); err != nil {
				return db.NotFound(err, "receiving account %q not found on this registry", r.To)
			}
			if found, err := s.reserveLiquid(ctx, tx, r.From, r.AmountUnits, "hold", now, func() (bool, error) {
				return s.holdReplay(ctx, tx, r, &out)
			}); found || err != nil {
				return err
			}
			id, err := newID()
			if err != nil {
				return err
			}
			if err := s.q.HoldInsert(ctx, tx, tegdb.HoldInsertParams{
				ID: id, AccountID: r.From, Receiver: r.To, AmountUnits: r.AmountUnits, Memo: r.Memo,
				ClientKey: r.IdempotencyKey, ExpiresAt: r.ExpiresAt, Now: now,
			}); err != nil {
				return err
			}
			out = Hold{ID: id, From: r.From, To: r.To, AmountUnits: r.AmountUnits, Status: HoldActive, Memo: r.Memo,
				IdempotencyKey: r.IdempotencyKey, ExpiresAt: r.ExpiresAt, CreatedAt: now, UpdatedAt: now}
			envs, err := s.extraHoldStep(ctx, tx, extra, out, nil, now)
			if err != nil {
				return err
			}
			placed, err := holdEvent(EventHoldPlaced, "hold-placed-", out, now)
			if err != nil {
				return err
			}
			return s.writeEvents(ctx, tx, append(envs, placed))
		})
		if err != nil && attempt == 0 && isUniqueViolation(err, "holds_client_key") {
			continue // a concurrent duplicate committed first: replay it
		}
		return out, err
	}
}

// holdReplay looks up r's idempotency key; found reports a committed hold
// (returned in out when it matches r, IdempotencyReuse otherwise).
func (s *Store) holdReplay(ctx context.Context, tx pgx.Tx, r HoldRequest, out *Hold) (found bool, err error) {
	row, err := s.q.HoldByClientKey(ctx, tx, tegdb.HoldByClientKeyParams{AccountID: r.From, ClientKey: r.IdempotencyKey})
	if db.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	h := holdFromRow(row)
	if h.To != r.To || h.AmountUnits != r.AmountUnits || h.Memo != r.Memo {
		return true, apperr.New(apperr.IdempotencyReuse, "idempotency key %q was already used for a different hold", r.IdempotencyKey)
	}
	h.Replayed = true
	*out = h
	return true, nil
}

func (s *Store) writeHoldEvent(ctx context.Context, tx pgx.Tx, typ, keyPrefix string, h Hold, now time.Time) error {
	env, err := holdEvent(typ, keyPrefix, h, now)
	if err != nil {
		return err
	}
	return s.outbox.Write(ctx, tx, env)
}

func holdEvent(typ, keyPrefix string, h Hold, now time.Time) (events.Envelope, error) {
	return newEvent(typ, keyPrefix+h.ID.String(), h.From, now, nil, holdPayload{
		HoldID: h.ID, From: h.From, To: h.To, AmountUnits: h.AmountUnits, PostedUnits: h.PostedUnits,
		TransferID: h.TransferID, ExpiresAt: h.ExpiresAt,
	})
}

// GetHold returns hold id, or NotFound.
func (s *Store) GetHold(ctx context.Context, id uuid.UUID) (Hold, error) {
	row, err := s.q.HoldGet(ctx, s.pool, id)
	if err != nil {
		return Hold{}, db.NotFound(err, "hold %s not found", id)
	}
	return holdFromRow(row), nil
}

// PostHold completes an active hold: amountUnits (0 means the full amount;
// otherwise 1..AmountUnits) move from From to To as a transfer, and the
// rest of the reservation is released. Posts to agent/developer accounts pay
// the intra-registry fee (velocity-scaled, deducted from the posted amount);
// posts to transit accounts pay none (cross-registry fees are charged by the
// receiving registry). One transaction writes the transfer, its journal
// entry, HoldPosted, TokensTransferred and TransactionFeeCollected.
//
// Idempotent by hold: posting an already-posted hold with the same amount
// returns it (Replayed) with its transfer. Errors: NotFound, Invalid (amount
// out of range or too small for the fee), Conflict (posted with another
// amount), FailedPrecondition (voided, expired, or past its expiry).
func (s *Store) PostHold(ctx context.Context, id uuid.UUID, amountUnits int64) (Hold, Transfer, error) {
	return s.postHold(ctx, id, amountUnits, nil)
}

func (s *Store) postHold(ctx context.Context, id uuid.UUID, amountUnits int64, extra HoldEvents) (Hold, Transfer, error) {
	if amountUnits < 0 {
		return Hold{}, Transfer{}, apperr.New(apperr.Invalid, "amount_units must be positive (or omitted for the full hold)")
	}
	now := s.clock()
	var h Hold
	var t Transfer
	err := s.db.TxOpts(ctx, batchTxOptions, func(tx pgx.Tx) error { // generic plans, as insertHold
		row, err := s.q.HoldGetForUpdate(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "hold %s not found", id)
		}
		h = holdFromRow(row)
		amount := amountUnits
		if amount == 0 {
			amount = h.AmountUnits
		}
		switch h.Status {
		case HoldPosted:
			if h.PostedUnits != amount {
				return apperr.New(apperr.Conflict, "hold %s was already posted with %s", id, money.Format(h.PostedUnits))
			}
			tr, err := s.q.TransferGet(ctx, tx, *h.TransferID)
			if err != nil {
				return err
			}
			t = transferFromRow(tr)
			h.Replayed, t.Replayed = true, true
			return nil
		case HoldVoided, HoldExpired:
			return apperr.New(apperr.FailedPrecondition, "hold %s is %s", id, h.Status)
		}
		if !now.Before(h.ExpiresAt) {
			return apperr.New(apperr.FailedPrecondition, "hold %s expired at %s", id, h.ExpiresAt.Format(time.RFC3339))
		}
		if amount > h.AmountUnits {
			return apperr.New(apperr.Invalid, "cannot post %s from a hold of %s", money.Format(amount), money.Format(h.AmountUnits))
		}
		// The sender's lock comes before the velocity count: every transfer
		// of the pair locks the sender, so the count then includes all of
		// them that committed before this one.
		locked, err := s.lockBalances(ctx, tx, map[balKey]struct{}{
			{h.From, ledger.BucketLiquid}: {}, {h.To, ledger.BucketLiquid}: {},
		})
		if err != nil {
			return err
		}
		bps := int64(0)
		if k, _ := ledger.KindOf(h.To); ledger.IsUserKind(k) {
			curve, err := s.feeCurve(ctx, tx)
			if err != nil {
				return err
			}
			counts, err := s.q.TransferPairCounts(ctx, tx, tegdb.TransferPairCountsParams{
				Since: now.Add(-ledger.VelocityWindow), MaxCount: int32(curve.CountCap()),
				Senders: []string{h.From}, Receivers: []string{h.To},
			})
			if err != nil {
				return err
			}
			if len(counts) != 1 {
				return fmt.Errorf("ledgerstore: %d velocity counts for 1 pair", len(counts))
			}
			bps = curve.BpsForVelocity(int(counts[0]))
		}
		fee, err := ledger.TransferFee(amount, bps)
		if err != nil {
			return apperr.New(apperr.Invalid, "%s", err.Error())
		}
		from, to := locked[balKey{h.From, ledger.BucketLiquid}], locked[balKey{h.To, ledger.BucketLiquid}]
		if from == nil || to == nil {
			return apperr.New(apperr.Internal, "hold %s refers to a missing balance", id)
		}
		if to.newUnits, err = money.Add(to.newUnits, fee.NetUnits); err != nil {
			return apperr.New(apperr.Invalid, "receiving balance would overflow")
		}
		// The reservation guarantees units ≥ held ≥ h.AmountUnits ≥ amount.
		from.newHeld -= h.AmountUnits
		from.newUnits -= amount
		if err := s.applyBalances(ctx, tx, locked, fee.FeeUnits, now); err != nil {
			return err
		}
		tid, err := newID()
		if err != nil {
			return err
		}
		holdID := h.ID
		t = Transfer{ID: tid, From: h.From, To: h.To, AmountUnits: amount, FeeUnits: fee.FeeUnits, NetUnits: fee.NetUnits,
			FeeBps: fee.Bps, Memo: h.Memo, IdempotencyKey: "#hold:" + h.ID.String(), HoldID: &holdID, CreatedAt: now}
		if err := s.q.HoldFinish(ctx, tx, tegdb.HoldFinishParams{Status: string(HoldPosted), PostedUnits: amount, TransferID: &tid, Now: now, ID: id}); err != nil {
			return err
		}
		h.Status, h.PostedUnits, h.TransferID, h.UpdatedAt = HoldPosted, amount, &tid, now
		posted, err := holdEvent(EventHoldPosted, "hold-posted-", h, now)
		if err != nil {
			return err
		}
		envs, err := s.extraHoldStep(ctx, tx, extra, h, &t, now)
		if err != nil {
			return err
		}
		return s.insertTransfers(ctx, tx, []Transfer{t}, append([]events.Envelope{posted}, envs...), now)
	})
	if err != nil {
		return Hold{}, Transfer{}, err
	}
	return h, t, nil
}

// VoidHold releases an active hold's reservation and writes HoldVoided.
// Voiding a voided or expired hold returns it unchanged (Replayed): the
// funds are released either way. Errors: NotFound, FailedPrecondition
// (already posted).
func (s *Store) VoidHold(ctx context.Context, id uuid.UUID) (Hold, error) {
	return s.voidHold(ctx, id, nil)
}

func (s *Store) voidHold(ctx context.Context, id uuid.UUID, extra HoldEvents) (Hold, error) {
	now := s.clock()
	var h Hold
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.HoldGetForUpdate(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "hold %s not found", id)
		}
		h = holdFromRow(row)
		switch h.Status {
		case HoldVoided, HoldExpired:
			h.Replayed = true
			return nil
		case HoldPosted:
			return apperr.New(apperr.FailedPrecondition, "hold %s is already posted", id)
		}
		if err := s.releaseHolds(ctx, tx, []Hold{h}, now); err != nil {
			return err
		}
		if err := s.q.HoldFinish(ctx, tx, tegdb.HoldFinishParams{Status: string(HoldVoided), Now: now, ID: id}); err != nil {
			return err
		}
		h.Status, h.UpdatedAt = HoldVoided, now
		envs, err := s.extraHoldStep(ctx, tx, extra, h, nil, now)
		if err != nil {
			return err
		}
		voided, err := holdEvent(EventHoldVoided, "hold-voided-", h, now)
		if err != nil {
			return err
		}
		return s.writeEvents(ctx, tx, append(envs, voided))
	})
	if err != nil {
		return Hold{}, err
	}
	return h, nil
}

// releaseHolds subtracts the holds' amounts from their accounts' held units
// (one netted update, rows locked in the global order).
func (s *Store) releaseHolds(ctx context.Context, tx pgx.Tx, hs []Hold, now time.Time) error {
	keys := make(map[balKey]struct{}, len(hs))
	for _, h := range hs {
		keys[balKey{h.From, ledger.BucketLiquid}] = struct{}{}
	}
	locked, err := s.lockBalances(ctx, tx, keys)
	if err != nil {
		return err
	}
	for _, h := range hs {
		b := locked[balKey{h.From, ledger.BucketLiquid}]
		if b == nil || b.newHeld < h.AmountUnits {
			return apperr.New(apperr.Internal, "hold %s: held units of %s out of step", h.ID, h.From)
		}
		b.newHeld -= h.AmountUnits
	}
	return s.applyBalances(ctx, tx, locked, 0, now)
}

// ExpireHolds voids up to limit (1..MaxSweepBatch) active holds whose expiry
// has passed, in one transaction, writing HoldExpired for each, and returns
// how many it expired. Holds locked by a concurrent post or void are skipped
// and picked up by the next call. Call it periodically (the worker runs it
// on a Temporal schedule) and again while it returns limit.
func (s *Store) ExpireHolds(ctx context.Context, limit int) (int, error) {
	if limit <= 0 || limit > MaxSweepBatch {
		limit = MaxSweepBatch
	}
	now := s.clock()
	var n int
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := s.q.HoldsExpiredLock(ctx, tx, tegdb.HoldsExpiredLockParams{Now: now, MaxRows: int32(limit)})
		if err != nil || len(rows) == 0 {
			n = 0
			return err
		}
		hs := make([]Hold, len(rows))
		envs := make([]events.Envelope, len(rows))
		for i, r := range rows {
			hs[i] = holdFromRow(r)
		}
		if err := s.releaseHolds(ctx, tx, hs, now); err != nil {
			return err
		}
		for i := range hs {
			if err := s.q.HoldFinish(ctx, tx, tegdb.HoldFinishParams{Status: string(HoldExpired), Now: now, ID: hs[i].ID}); err != nil {
				return err
			}
			hs[i].Status = HoldExpired
			if envs[i], err = holdEvent(EventHoldExpired, "hold-expired-", hs[i], now); err != nil {
				return err
			}
		}
		n = len(hs)
		return s.writeEvents(ctx, tx, envs)
	})
	return n, err
}

// MaxSweepCalls bounds the ExpireHolds calls of one SweepExpiredHolds.
const MaxSweepCalls = 100

// SweepExpiredHolds is the sweeper entry point for a periodic job (a
// Temporal schedule's activity): it calls ExpireHolds with MaxSweepBatch
// until a call finds fewer than that many expired holds, at most
// MaxSweepCalls times (≤ 100,000 holds per run; the next run continues), and
// returns how many holds it expired. Each call is its own transaction, so an
// error leaves the earlier calls' work committed; the count is still returned.
func (s *Store) SweepExpiredHolds(ctx context.Context) (int, error) {
	total := 0
	for range MaxSweepCalls {
		n, err := s.ExpireHolds(ctx, MaxSweepBatch)
		total += n
		if err != nil || n < MaxSweepBatch {
			return total, err
		}
	}
	return total, nil
}
