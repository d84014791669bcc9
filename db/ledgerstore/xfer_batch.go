package ledgerstore

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// XferBegun is one result of BeginXfers: the accepted (or replayed)
// transfer, or why it was refused.
type XferBegun struct {
	Xfer Xfer
	Err  error
}

// BeginXfers accepts many cross-registry transfers in one transaction
// (group commit of BeginXfer): each is decided on its own, in order, against
// the locked sender balances, so one refusal (Invalid, NotFound,
// InsufficientFunds, IdempotencyReuse) does not affect the others. The
// returned error is for failures of the whole transaction (nothing was
// accepted). len(reqs) must be 1..MaxXferBatch.
func (s *Store) BeginXfers(ctx context.Context, reqs []XferRequest) ([]XferBegun, error) {
	if len(reqs) == 0 || len(reqs) > MaxXferBatch {
		return nil, apperr.New(apperr.Invalid, "1..%d transfers per call", MaxXferBatch)
	}
	out := make([]XferBegun, len(reqs))
	valid := make([]bool, len(reqs))
	for i, r := range reqs {
		if err := r.validate(); err != nil {
			out[i].Err = err
			continue
		}
		if err := s.ensureTransit(ctx, r.Target); err != nil {
			out[i].Err = err
			continue
		}
		valid[i] = true
	}
	err := s.db.Tx(ctx, func(tx pgx.Tx) error { return s.beginXfers(ctx, tx, reqs, valid, out) })
	if isUniqueViolation(err, "xfers_client_key") || isUniqueViolation(err, "holds_client_key") {
		// A concurrent duplicate committed first: settle each on its own
		// (BeginXfer replays it).
		for i, r := range reqs {
			if valid[i] {
				out[i].Xfer, out[i].Err = s.BeginXfer(ctx, r)
			}
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) beginXfers(ctx context.Context, tx pgx.Tx, reqs []XferRequest, valid []bool, out []XferBegun) error {
	type bizKey struct{ from, key string }
	first := map[bizKey]int{}
	dupOf := map[int]int{}
	var kp tegdb.XfersByClientKeysParams
	for i, r := range reqs {
		if !valid[i] {
			continue
		}
		out[i] = XferBegun{}
		k := bizKey{r.From, r.IdempotencyKey}
		if f, ok := first[k]; ok {
			dupOf[i] = f
			continue
		}
		first[k] = i
		kp.Senders = append(kp.Senders, r.From)
		kp.ClientKeys = append(kp.ClientKeys, r.IdempotencyKey)
	}
	rows, err := s.q.XfersByClientKeys(ctx, tx, kp)
	if err != nil {
		return err
	}
	settled := map[int]bool{}
	for _, row := range rows {
		i := first[bizKey{row.Sender, row.ClientKey}]
		x, r := xferFromRow(row), reqs[i]
		if x.To != r.To || x.AmountUnits != r.AmountUnits || x.Memo != r.Memo {
			out[i].Err = apperr.New(apperr.IdempotencyReuse, "idempotency key %q was already used for a different transfer", r.IdempotencyKey)
		} else {
			x.Replayed = true
			out[i].Xfer = x
		}
		settled[i] = true
	}
	keys := map[balKey]struct{}{}
	for _, i := range first {
		if !settled[i] {
			keys[balKey{reqs[i].From, ledger.BucketLiquid}] = struct{}{}
		}
	}
	if len(keys) > 0 {
		locked, err := s.lockBalances(ctx, tx, keys)
		if err != nil {
			return err
		}
		now := s.clock()
		expires := now.Add(XferHoldTTL)
		var (
			hp   = tegdb.XferHoldsInsertParams{ExpiresAt: expires, Now: now}
			xp   = tegdb.XfersInsertParams{Now: now}
			envs []events.Envelope
		)
		for i, r := range reqs {
			if !valid[i] || settled[i] || first[bizKey{r.From, r.IdempotencyKey}] != i {
				continue
			}
			from := locked[balKey{r.From, ledger.BucketLiquid}]
			if from == nil {
				out[i].Err = apperr.New(apperr.NotFound, "account %q not found", r.From)
				continue
			}
			if from.available() < r.AmountUnits {
				out[i].Err = apperr.New(apperr.InsufficientFunds, "available balance of %s is %s, transfer needs %s",
					r.From, money.Format(from.available()), money.Format(r.AmountUnits))
				continue
			}
			from.newHeld += r.AmountUnits
			id, err := newID()
			if err != nil {
				return err
			}
			holdID, err := newID()
			if err != nil {
				return err
			}
			h := Hold{ID: holdID, From: r.From, To: TransitAccount(r.Target), AmountUnits: r.AmountUnits, Status: HoldActive,
				Memo: r.Memo, IdempotencyKey: xferClientPref + id.String(), ExpiresAt: expires, CreatedAt: now, UpdatedAt: now}
			hp.Ids = append(hp.Ids, h.ID)
			hp.AccountIds = append(hp.AccountIds, h.From)
			hp.Receivers = append(hp.Receivers, h.To)
			hp.Amounts = append(hp.Amounts, h.AmountUnits)
			hp.Memos = append(hp.Memos, h.Memo)
			hp.ClientKeys = append(hp.ClientKeys, h.IdempotencyKey)
			xp.Ids = append(xp.Ids, id)
			xp.Senders = append(xp.Senders, r.From)
			xp.Receivers = append(xp.Receivers, r.To)
			xp.Targets = append(xp.Targets, r.Target)
			xp.Amounts = append(xp.Amounts, r.AmountUnits)
			xp.Memos = append(xp.Memos, r.Memo)
			xp.ClientKeys = append(xp.ClientKeys, r.IdempotencyKey)
			xp.HoldIds = append(xp.HoldIds, holdID)
			ev, err := holdEvent(EventHoldPlaced, "hold-placed-", h, now)
			if err != nil {
				return err
			}
			envs = append(envs, ev)
			out[i].Xfer = Xfer{ID: id, From: r.From, To: r.To, Target: r.Target, AmountUnits: r.AmountUnits, Memo: r.Memo,
				IdempotencyKey: r.IdempotencyKey, HoldID: holdID, Status: xferstate.Pending, CreatedAt: now, UpdatedAt: now}
		}
		if len(xp.Ids) > 0 {
			if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
				return err
			}
			if err := s.q.XferHoldsInsert(ctx, tx, hp); err != nil {
				return err
			}
			if err := s.q.XfersInsert(ctx, tx, xp); err != nil {
				return err
			}
			if err := s.writeEvents(ctx, tx, envs); err != nil {
				return err
			}
		}
	}
	for i, f := range dupOf {
		switch {
		case out[f].Err != nil:
			out[i].Err = out[f].Err
		case out[f].Xfer.To == reqs[i].To && out[f].Xfer.AmountUnits == reqs[i].AmountUnits && out[f].Xfer.Memo == reqs[i].Memo:
			out[i].Xfer = out[f].Xfer
			out[i].Xfer.Replayed = true
		default:
			out[i].Err = apperr.New(apperr.IdempotencyReuse, "idempotency key %q was already used for a different transfer", reqs[i].IdempotencyKey)
		}
	}
	return nil
}
