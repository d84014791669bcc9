package ledgerstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// HoldEvents builds what commits in the same transaction as a hold's state
// change (the hold as it is after the change; t is the transfer a post
// made, nil otherwise): events, and optionally the stored response of the
// API request making the change. Returning an error rolls the change back,
// so it may also refuse the change (a payment token that does not match its
// hold). Flows built on holds, such as paid calls, use it to record their
// own step with the money movement instead of after it.
type HoldEvents func(h Hold, t *Transfer) (HoldStep, error)

// HoldStep is what a HoldEvents adds to a hold's transaction.
type HoldStep struct {
	Events []events.Envelope
	// Record, when set, is written complete into idempotency_keys in the
	// same transaction: the request's claim and stored response cost no
	// commit of their own. If the key is already recorded (a concurrent
	// duplicate committed first) the whole step rolls back with
	// ErrRecorded; the caller answers from that record.
	Record *StepRecord
}

// StepRecord is an API request's idempotency record (see api.Idempotency):
// its scope and key, request hash, and the response to replay.
type StepRecord struct {
	Scope, Key, Method, Path string
	RequestHash              []byte
	Status                   int
	Body                     []byte
}

// ErrRecorded: the step's idempotency key was already recorded; nothing
// was written.
var ErrRecorded = errors.New("ledgerstore: idempotency key already recorded")

// PlaceHoldWith is PlaceHold plus extra's events. A replay (same
// idempotency key) returns the original hold without calling extra: its
// events committed with it.
func (s *Store) PlaceHoldWith(ctx context.Context, r HoldRequest, extra HoldEvents) (Hold, error) {
	now := s.clock()
	r.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Microsecond)
	if err := r.validate(now); err != nil {
		return Hold{}, err
	}
	return s.placePaidHold(ctx, r, extra, now)
}

// placePaidHold is insertHold in fewer round trips, for the hold a
// payment token reserves (one per paid call): the reservation is one
// conditional update (PaidHoldReserve), and a retry of a committed hold's
// key is found by the key's unique constraint instead of a lookup ahead
// of every hold. Same results and errors as insertHold: a replay returns
// the original hold (Replayed), or IdempotencyReuse; NotFound names the
// unknown account; InsufficientFunds the available balance.
func (s *Store) placePaidHold(ctx context.Context, r HoldRequest, extra HoldEvents, now time.Time) (Hold, error) {
	var out Hold
	for attempt := 0; ; attempt++ {
		err := s.db.TxOpts(ctx, batchTxOptions, func(tx pgx.Tx) error {
			if attempt > 0 { // the key's hold committed meanwhile
				if found, err := s.holdReplay(ctx, tx, r, &out); found || err != nil {
					return err
				}
			}
			n, err := s.q.PaidHoldReserve(ctx, tx, tegdb.PaidHoldReserveParams{Amount: r.AmountUnits, Now: now, Account: r.From, Receiver: r.To})
			if err != nil {
				return err
			}
			if n == 0 {
				// Why not: a retry of a hold that took the funds, an
				// unknown account, or too little available.
				if found, err := s.holdReplay(ctx, tx, r, &out); found || err != nil {
					return err
				}
				if _, err := s.q.AccountGet(ctx, tx, r.To); err != nil {
					return db.NotFound(err, "receiving account %q not found on this registry", r.To)
				}
				if _, err := s.reserveLiquid(ctx, tx, r.From, r.AmountUnits, "hold", now, func() (bool, error) { return false, nil }); err != nil {
					return err
				}
				// The balance moved between the two statements: reserved now.
			}
			id, err := newID()
			if err != nil {
				return err
			}
			out = Hold{ID: id, From: r.From, To: r.To, AmountUnits: r.AmountUnits, Status: HoldActive, Memo: r.Memo,
				IdempotencyKey: r.IdempotencyKey, ExpiresAt: r.ExpiresAt, CreatedAt: now, UpdatedAt: now}
			var step HoldStep
			if extra != nil {
				if step, err = extra(out, nil); err != nil {
					return err
				}
			}
			hp := tegdb.HoldInsertParams{
				ID: id, AccountID: r.From, Receiver: r.To, AmountUnits: r.AmountUnits, Memo: r.Memo,
				ClientKey: r.IdempotencyKey, ExpiresAt: r.ExpiresAt, Now: now,
			}
			if rec := step.Record; rec != nil {
				// The hold and its request's record in one statement.
				n, err := s.q.PaidHoldInsertRecorded(ctx, tx, tegdb.PaidHoldInsertRecordedParams{
					Scope: rec.Scope, Key: rec.Key, RequestHash: nonNil(rec.RequestHash), Method: rec.Method, Path: rec.Path,
					StatusCode: int32(rec.Status), ResponseBody: nonNil(rec.Body), Now: now,
					ID: hp.ID, AccountID: hp.AccountID, Receiver: hp.Receiver, AmountUnits: hp.AmountUnits, Memo: hp.Memo,
					ClientKey: hp.ClientKey, ExpiresAt: hp.ExpiresAt,
				})
				if err != nil {
					return err
				}
				if n == 0 {
					return ErrRecorded
				}
			} else if err := s.q.HoldInsert(ctx, tx, hp); err != nil {
				return err
			}
			placed, err := holdEvent(EventHoldPlaced, "hold-placed-", out, now)
			if err != nil {
				return err
			}
			return s.writeEvents(ctx, tx, append(step.Events, placed))
		})
		if err != nil && attempt == 0 && isUniqueViolation(err, "holds_client_key") {
			continue // the key was used: the next attempt replays it
		}
		return out, err
	}
}

// PostHoldWith is PostHold plus extra's events; extra is not called when
// the hold was already posted (Replayed).
func (s *Store) PostHoldWith(ctx context.Context, id uuid.UUID, amountUnits int64, extra HoldEvents) (Hold, Transfer, error) {
	return s.postHold(ctx, id, amountUnits, extra)
}

// VoidHoldWith is VoidHold plus extra's events; extra is not called when
// the hold was already voided or expired (Replayed).
func (s *Store) VoidHoldWith(ctx context.Context, id uuid.UUID, extra HoldEvents) (Hold, error) {
	return s.voidHold(ctx, id, extra)
}

// extraHoldStep writes extra's record (if any) in tx and returns its
// events, for the caller to write with its own in one statement.
func (s *Store) extraHoldStep(ctx context.Context, tx pgx.Tx, extra HoldEvents, h Hold, t *Transfer, now time.Time) ([]events.Envelope, error) {
	if extra == nil {
		return nil, nil
	}
	step, err := extra(h, t)
	if err != nil {
		return nil, err
	}
	if r := step.Record; r != nil {
		status := int32(r.Status)
		n, err := s.q.IdempotencyKeyInsertDone(ctx, tx, tegdb.IdempotencyKeyInsertDoneParams{
			Scope: r.Scope, Key: r.Key, RequestHash: nonNil(r.RequestHash), Method: r.Method, Path: r.Path,
			StatusCode: &status, ResponseBody: nonNil(r.Body), Now: now,
		})
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, ErrRecorded
		}
	}
	return step.Events, nil
}

// nonNil keeps a NOT NULL column (bytea, text[]) from receiving NULL.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// IdempotencyRecordOf returns the idempotency record of (scope, key), if
// any (in flight: StatusCode 0).
func (s *Store) IdempotencyRecordOf(ctx context.Context, scope, key string) (db.IdempotencyRecord, bool, error) {
	r, err := s.q.IdempotencyKeyGet(ctx, s.pool, tegdb.IdempotencyKeyGetParams{Scope: scope, Key: key})
	if db.IsNotFound(err) {
		return db.IdempotencyRecord{}, false, nil
	}
	if err != nil {
		return db.IdempotencyRecord{}, false, err
	}
	rec := db.IdempotencyRecord{RequestHash: r.RequestHash, Method: r.Method, Path: r.Path, Body: r.ResponseBody, CreatedAt: r.CreatedAt}
	if r.StatusCode != nil {
		rec.StatusCode = int(*r.StatusCode)
	}
	return rec, true, nil
}

// Payment tokens for a payee on another registry of the frame. Issuing
// reserves the maximum with a hold to transit:<payee's registry> whose key
// is store-made ("#paid:<caller key>"), so the hand-operated hold routes
// refuse it (CrossRegistry) and the expiry sweep voids it like any other.
// Settling turns that hold into a cross-registry transfer in one
// transaction: the token's hold is voided and a pending transfer of the
// amount due is accepted with its own hold, exactly as BeginXfer would; the
// settlement saga then carries it. The transfer's key is
// "#paid:<token hold id>", unique per payer, so a token becomes at most one
// transfer whatever retries, duplicates or crashes happen.

const paidXferPref = "#paid:"

// paidHoldKey is the token hold's store-made key for a caller's key (a
// digest when prefixing would pass the column's 200 characters).
func paidHoldKey(key string) string {
	if len(paidXferPref)+len(key) <= 200 {
		return paidXferPref + key
	}
	d := sha256.Sum256([]byte(key))
	return paidXferPref + "sha256:" + hex.EncodeToString(d[:])
}

func paidXferKey(holdID uuid.UUID) string { return paidXferPref + holdID.String() }

// PlacePaidXferHold reserves r.AmountUnits of r.From for a payee whose
// home is registry target: a hold to transit:<target> (r.To is ignored).
// Idempotent per (From, r.IdempotencyKey) like PlaceHold; extra's events
// commit with it. Errors: those of PlaceHold.
func (s *Store) PlacePaidXferHold(ctx context.Context, r HoldRequest, target string, extra HoldEvents) (Hold, error) {
	now := s.clock()
	r.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Microsecond)
	if k, err := ledger.KindOf(TransitAccount(target)); err != nil || k != ledger.KindTransit || target == s.outbox.Registry {
		return Hold{}, apperr.New(apperr.Invalid, "registry %q is not a peer registry ID", clipID(target))
	}
	r.To = TransitAccount(target)
	if err := r.validate(now); err != nil {
		return Hold{}, err
	}
	if err := s.ensureTransit(ctx, target); err != nil {
		return Hold{}, err
	}
	r.IdempotencyKey = paidHoldKey(r.IdempotencyKey)
	return s.placePaidHold(ctx, r, extra, now)
}

// PaidXferEvents builds events that commit with a settlement's conversion:
// h is the token's hold (voided), x the transfer accepted in its place.
type PaidXferEvents func(h Hold, x Xfer) ([]events.Envelope, error)

// SettlePaidXfer settles a cross-registry payment token's hold for
// amountUnits (1..its amount) to payee, whose home is target: in one
// transaction the hold is voided (HoldVoided) and a pending cross-registry
// transfer payer → payee of amountUnits is accepted with its own hold
// (HoldPlaced), plus extra's events. The caller hands the transfer to the
// settlement batcher; if it crashes first, the batcher's recovery finds
// the pending row. A second call for the same hold returns the same
// transfer (Replayed) when the amount is the same, Conflict otherwise.
// Errors: NotFound, Invalid (not such a hold, amount out of range),
// FailedPrecondition (released, expired).
func (s *Store) SettlePaidXfer(ctx context.Context, holdID uuid.UUID, amountUnits int64, payee, target string, extra PaidXferEvents) (Hold, Xfer, error) {
	if amountUnits <= 0 {
		return Hold{}, Xfer{}, apperr.New(apperr.Invalid, "the amount to settle must be positive")
	}
	if _, err := ledger.TransferFee(amountUnits, ledger.BaseFeeBps); err != nil {
		return Hold{}, Xfer{}, apperr.New(apperr.Invalid, "%s", err.Error())
	}
	var h Hold
	var x Xfer
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		now := s.clock()
		row, err := s.q.HoldGetForUpdate(ctx, tx, holdID)
		if err != nil {
			return db.NotFound(err, "hold %s not found", holdID)
		}
		h = holdFromRow(row)
		if !strings.HasPrefix(h.IdempotencyKey, paidXferPref) || h.To != TransitAccount(target) {
			return apperr.New(apperr.Invalid, "hold %s is not a payment reserved for registry %q", holdID, clipID(target))
		}
		// The hold's lock serialises settlements of one token; the
		// transfer row, once there, is the answer to every later one.
		xr, err := s.q.XferByClientKey(ctx, tx, tegdb.XferByClientKeyParams{Sender: h.From, ClientKey: paidXferKey(h.ID)})
		switch {
		case err == nil:
			x = xferFromRow(xr)
			if x.AmountUnits != amountUnits || x.To != payee {
				return apperr.New(apperr.Conflict, "payment %s was already settled with %s", holdID, money.Format(x.AmountUnits))
			}
			x.Replayed, h.Replayed = true, true
			return nil
		case !db.IsNotFound(err):
			return err
		}
		switch {
		case h.Status != HoldActive:
			return apperr.New(apperr.FailedPrecondition, "hold %s is %s", holdID, h.Status)
		case !now.Before(h.ExpiresAt):
			return apperr.New(apperr.FailedPrecondition, "hold %s expired at %s", holdID, h.ExpiresAt.Format(time.RFC3339))
		case amountUnits > h.AmountUnits:
			return apperr.New(apperr.Invalid, "cannot settle %s from a payment of at most %s", money.Format(amountUnits), money.Format(h.AmountUnits))
		}
		key := balKey{h.From, ledger.BucketLiquid}
		locked, err := s.lockBalances(ctx, tx, map[balKey]struct{}{key: {}})
		if err != nil {
			return err
		}
		b := locked[key]
		if b == nil || b.newHeld < h.AmountUnits {
			return apperr.New(apperr.Internal, "hold %s: held units of %s out of step", h.ID, h.From)
		}
		// The token reserved the maximum; the transfer reserves what is
		// due (≤ maximum, so it always fits).
		b.newHeld += amountUnits - h.AmountUnits
		if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
			return err
		}
		if err := s.q.HoldFinish(ctx, tx, tegdb.HoldFinishParams{Status: string(HoldVoided), Now: now, ID: h.ID}); err != nil {
			return err
		}
		h.Status, h.UpdatedAt = HoldVoided, now
		id, err := newID()
		if err != nil {
			return err
		}
		xh := Hold{From: h.From, To: h.To, AmountUnits: amountUnits, Status: HoldActive, Memo: h.Memo,
			IdempotencyKey: xferClientPref + id.String(), ExpiresAt: now.Add(XferHoldTTL), CreatedAt: now, UpdatedAt: now}
		if xh.ID, err = newID(); err != nil {
			return err
		}
		if err := s.q.HoldInsert(ctx, tx, tegdb.HoldInsertParams{
			ID: xh.ID, AccountID: xh.From, Receiver: xh.To, AmountUnits: xh.AmountUnits, Memo: xh.Memo,
			ClientKey: xh.IdempotencyKey, ExpiresAt: xh.ExpiresAt, Now: now,
		}); err != nil {
			return err
		}
		x = Xfer{ID: id, From: h.From, To: payee, Target: target, AmountUnits: amountUnits, Memo: h.Memo,
			IdempotencyKey: paidXferKey(h.ID), HoldID: xh.ID, Status: xferstate.Pending, CreatedAt: now, UpdatedAt: now}
		if err := s.q.XferInsert(ctx, tx, tegdb.XferInsertParams{
			ID: x.ID, Sender: x.From, Receiver: x.To, TargetRegistry: x.Target, AmountUnits: x.AmountUnits,
			Memo: x.Memo, ClientKey: x.IdempotencyKey, HoldID: xh.ID, Now: now,
		}); err != nil {
			return err
		}
		voided, err := holdEvent(EventHoldVoided, "hold-voided-", h, now)
		if err != nil {
			return err
		}
		placed, err := holdEvent(EventHoldPlaced, "hold-placed-", xh, now)
		if err != nil {
			return err
		}
		envs := []events.Envelope{voided, placed}
		if extra != nil {
			more, err := extra(h, x)
			if err != nil {
				return err
			}
			envs = append(envs, more...)
		}
		return s.writeEvents(ctx, tx, envs)
	})
	if err != nil {
		return Hold{}, Xfer{}, err
	}
	return h, x, nil
}

// PaidXferOf returns the transfer a cross-registry payment token's hold
// was settled into (found false: not settled).
func (s *Store) PaidXferOf(ctx context.Context, payer string, holdID uuid.UUID) (Xfer, bool, error) {
	r, err := s.q.XferByClientKey(ctx, s.pool, tegdb.XferByClientKeyParams{Sender: payer, ClientKey: paidXferKey(holdID)})
	if db.IsNotFound(err) {
		return Xfer{}, false, nil
	}
	if err != nil {
		return Xfer{}, false, err
	}
	return xferFromRow(r), true, nil
}
