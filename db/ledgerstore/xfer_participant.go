package ledgerstore

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// The participant side of cross-registry transfers: prepares, commits and
// aborts of the transfers peers send to this TEG's agents.

// XferPrepareItem is one transfer a peer asks this TEG to prepare.
type XferPrepareItem struct {
	ID          uuid.UUID
	From, To    string
	AmountUnits int64
	Memo        string
}

// XferPrepareResult is a participant's answer for one transfer.
type XferPrepareResult struct {
	ID       uuid.UUID
	Status   xferstate.Status // Prepared, Rejected, Committed, Aborted or Unknown
	Reason   string
	FeeUnits int64
	// From, To and AmountUnits are the terms this TEG recorded for the
	// transfer (prepare answers only; empty when it recorded none): the
	// coordinator compares them with its own record before committing.
	From, To    string
	AmountUnits int64
}

// ReasonTermsDiffer is the answer to a commit whose stated terms differ
// from the recorded prepare: nothing is credited.
const ReasonTermsDiffer = "the prepared terms differ from the coordinator's; nothing credited"

// PrepareXfers validates and records transfers from source: a receiver
// that is an agent or developer account here (or, from the configured
// treasury funder only, treasury to treasury) and an amount that carries
// the 0.5% fee are prepared (nothing moves yet), anything else is rejected
// with a reason, and so is one that would take the source's exposure
// beyond its cap with the source's open prepares counted (reason
// xferstate.ReasonExposureCap…). Idempotent by transfer ID: a repeated
// prepare answers from the first record (an ID recorded with other
// parameters or from another source is reported rejected).
func (s *Store) PrepareXfers(ctx context.Context, source string, items []XferPrepareItem) ([]XferPrepareResult, error) {
	if len(items) == 0 || len(items) > MaxXferBatch {
		return nil, apperr.New(apperr.Invalid, "prepare 1..%d transfers per call", MaxXferBatch)
	}
	if err := s.ensureTransit(ctx, source); err != nil {
		return nil, err
	}
	receivers := make([]string, 0, len(items))
	for _, it := range items {
		receivers = append(receivers, it.To)
	}
	exist, err := s.q.XferAccountsExisting(ctx, s.pool, receivers)
	if err != nil {
		return nil, err
	}
	kinds := make(map[string]ledger.Kind, len(exist))
	for _, r := range exist {
		kinds[r.ID] = ledger.Kind(r.Kind)
	}
	now := s.clock()
	p := tegdb.XferPreparesInsertParams{SourceRegistry: source, Now: now}
	ids := make([]uuid.UUID, len(items))
	for i, it := range items {
		ids[i] = it.ID
		status, reason := xferstate.Prepared, ""
		fee, ferr := ledger.TransferFee(it.AmountUnits, ledger.BaseFeeBps)
		allocation := it.From == ledger.AccountTreasury && it.To == ledger.AccountTreasury
		switch {
		case allocation && (s.funder == "" || source != s.funder):
			status, reason = xferstate.Rejected, "registry "+clipID(source)+" may not fund this registry's treasury"
		case !allocation && userAccount("from", it.From) != nil:
			status, reason = xferstate.Rejected, "the sender is not an agent or developer account"
		case !allocation && !ledger.IsUserKind(kinds[it.To]):
			status, reason = xferstate.Rejected, "receiver "+clipID(it.To)+" has no account on this registry"
		case ferr != nil:
			status, reason = xferstate.Rejected, ferr.Error()
		case validateText("memo", it.Memo, MaxMemoBytes) != nil:
			status, reason = xferstate.Rejected, "invalid memo"
		}
		if it.AmountUnits <= 0 {
			return nil, apperr.New(apperr.Invalid, "transfer %s: amount_units must be positive", it.ID)
		}
		memo := it.Memo
		if status == xferstate.Rejected {
			fee = ledger.Fee{}
			if len(memo) > MaxMemoBytes {
				memo = ""
			}
		}
		p.Ids = append(p.Ids, it.ID)
		p.Senders = append(p.Senders, clipID(it.From))
		p.Receivers = append(p.Receivers, clipID(it.To))
		p.Amounts = append(p.Amounts, it.AmountUnits)
		p.Fees = append(p.Fees, fee.FeeUnits)
		p.FeeBps = append(p.FeeBps, int32(fee.Bps))
		p.Memos = append(p.Memos, memo)
		p.Statuses = append(p.Statuses, string(status))
		p.Reasons = append(p.Reasons, reason)
	}
	// The prepares are recorded with transit:<source> locked, once the
	// exposure cap has had its say (reserveExposure); a retried attempt
	// starts again from the validated values.
	refused := 0
	err = s.db.Tx(ctx, func(tx pgx.Tx) error {
		q := p
		q.Statuses, q.Reasons = slices.Clone(p.Statuses), slices.Clone(p.Reasons)
		q.Fees, q.FeeBps = slices.Clone(p.Fees), slices.Clone(p.FeeBps)
		var err error
		if refused, err = s.reserveExposure(ctx, tx, source, &q); err != nil {
			return err
		}
		return s.q.XferPreparesInsert(ctx, tx, q)
	})
	if err != nil {
		return nil, err
	}
	s.countExposureRefused(source, refused)
	rows, err := s.q.XferPreparesGet(ctx, s.pool, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[uuid.UUID]tegdb.XferPrepare, len(rows))
	for _, r := range rows {
		byID[r.TransferID] = r
	}
	out := make([]XferPrepareResult, len(items))
	for i, it := range items {
		r, ok := byID[it.ID]
		switch {
		case !ok:
			return nil, apperr.New(apperr.Internal, "prepare of %s not recorded", it.ID)
		case r.SourceRegistry != source:
			out[i] = XferPrepareResult{ID: it.ID, Status: xferstate.Rejected, Reason: "transfer id already prepared by another registry"}
		case r.Sender != it.From || r.Receiver != it.To || r.AmountUnits != it.AmountUnits:
			out[i] = XferPrepareResult{ID: it.ID, Status: xferstate.Rejected, Reason: "transfer id already prepared with other parameters",
				From: r.Sender, To: r.Receiver, AmountUnits: r.AmountUnits}
		default:
			out[i] = XferPrepareResult{ID: it.ID, Status: xferstate.Status(r.Status), Reason: r.Reason, FeeUnits: r.FeeUnits,
				From: r.Sender, To: r.Receiver, AmountUnits: r.AmountUnits}
		}
	}
	return out, nil
}

// CommitXfers credits prepared transfers from source in one transaction:
// transit:<source> −amount, receiver +(amount − fee), fee_collector +fee
// (CrossRegistryCredited xfer-<id>-credit, TokensTransferred xfer-<id>).
// Each item states the terms the coordinator recorded (its memo is not
// compared); a prepare recorded with other sender, receiver or amount is
// not credited and is answered Rejected with ReasonTermsDiffer (counted
// in xfer_terms_mismatch_total{side="participant"}; it stays prepared).
// Idempotent: a committed prepare answers committed again. A prepare that
// was rejected or aborted, or was never recorded, is reported as such
// (nothing moves for it). A commit that would take the source's exposure
// beyond its cap is refused whole (apperr.ExposureCapExceeded): nothing is
// credited, the prepares stay open.
func (s *Store) CommitXfers(ctx context.Context, source string, items []XferPrepareItem) ([]XferPrepareResult, error) {
	ids := make([]uuid.UUID, len(items))
	terms := make(map[uuid.UUID]XferPrepareItem, len(items))
	for i, it := range items {
		ids[i] = it.ID
		if prev, dup := terms[it.ID]; dup && (prev.From != it.From || prev.To != it.To || prev.AmountUnits != it.AmountUnits) {
			return nil, apperr.New(apperr.Invalid, "transfer %s is stated twice with different terms", it.ID)
		}
		terms[it.ID] = it
	}
	return s.finishPrepares(ctx, source, ids, terms)
}

// AbortXfers drops prepared transfers from source (nothing had moved).
// Idempotent; an unknown ID is reported Unknown (nothing to abort); a
// committed one is reported committed (a protocol violation the caller
// must surface: a commit decision is never undone).
func (s *Store) AbortXfers(ctx context.Context, source string, ids []uuid.UUID) ([]XferPrepareResult, error) {
	return s.finishPrepares(ctx, source, ids, nil)
}

// finishPrepares commits (terms given: each prepare must match its terms)
// or aborts (terms nil) the prepares of ids.
func (s *Store) finishPrepares(ctx context.Context, source string, ids []uuid.UUID, terms map[uuid.UUID]XferPrepareItem) ([]XferPrepareResult, error) {
	commit := terms != nil
	if len(ids) == 0 || len(ids) > MaxXferBatch {
		return nil, apperr.New(apperr.Invalid, "1..%d transfers per call", MaxXferBatch)
	}
	var out []XferPrepareResult
	capRefused := 0   // transfers of the last attempt refused by the exposure cap
	termsRefused := 0 // prepares of the last attempt whose terms differ from the stated ones
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		now := s.clock()
		capRefused, termsRefused = 0, 0
		rows, err := s.q.XferPreparesLock(ctx, tx, ids)
		if err != nil {
			return err
		}
		byID := make(map[uuid.UUID]tegdb.XferPrepare, len(rows))
		for _, r := range rows {
			byID[r.TransferID] = r
		}
		out = make([]XferPrepareResult, len(ids))
		var todo []tegdb.XferPrepare
		seen := map[uuid.UUID]bool{}
		for i, id := range ids {
			r, ok := byID[id]
			switch {
			case !ok:
				out[i] = XferPrepareResult{ID: id, Status: xferstate.Unknown}
				continue
			case r.SourceRegistry != source:
				out[i] = XferPrepareResult{ID: id, Status: xferstate.Unknown, Reason: "prepared by another registry"}
				continue
			}
			if t := terms[id]; commit && (r.Sender != t.From || r.Receiver != t.To || r.AmountUnits != t.AmountUnits) {
				out[i] = XferPrepareResult{ID: id, Status: xferstate.Rejected, Reason: ReasonTermsDiffer}
				if xferstate.Status(r.Status) == xferstate.Prepared {
					termsRefused++
				}
				continue
			}
			out[i] = XferPrepareResult{ID: id, Status: xferstate.Status(r.Status), Reason: r.Reason, FeeUnits: r.FeeUnits}
			if xferstate.Status(r.Status) == xferstate.Prepared && !seen[id] {
				seen[id] = true
				todo = append(todo, r)
			}
		}
		if len(todo) == 0 {
			return nil
		}
		upd := tegdb.XferPreparesUpdateParams{Now: now}
		final := map[uuid.UUID]xferstate.Status{}
		if !commit {
			for _, r := range todo {
				upd.Ids = append(upd.Ids, r.TransferID)
				upd.Statuses = append(upd.Statuses, string(xferstate.Aborted))
				upd.CreditIds = append(upd.CreditIds, uuid.Nil)
				final[r.TransferID] = xferstate.Aborted
			}
		} else {
			transit := TransitAccount(source)
			keys := map[balKey]struct{}{{transit, ledger.BucketLiquid}: {}}
			for _, r := range todo {
				keys[balKey{r.Receiver, ledger.BucketLiquid}] = struct{}{}
			}
			locked, err := s.lockBalances(ctx, tx, keys)
			if err != nil {
				return err
			}
			tb := locked[balKey{transit, ledger.BucketLiquid}]
			if tb == nil {
				return apperr.New(apperr.Internal, "transit account %s missing", transit)
			}
			var (
				credits  []Transfer
				envs     []events.Envelope
				feeTotal int64
				self     = s.outbox.Registry
			)
			for _, r := range todo {
				to := locked[balKey{r.Receiver, ledger.BucketLiquid}]
				if to == nil {
					return apperr.New(apperr.Internal, "receiver %s of prepared transfer %s vanished", r.Receiver, r.TransferID)
				}
				net := r.AmountUnits - r.FeeUnits
				if to.newUnits, err = money.Add(to.newUnits, net); err != nil {
					return apperr.New(apperr.Internal, "receiving balance would overflow")
				}
				if tb.newUnits, err = money.Sub(tb.newUnits, r.AmountUnits); err != nil {
					return apperr.New(apperr.Internal, "transit balance would overflow")
				}
				if feeTotal, err = money.Add(feeTotal, r.FeeUnits); err != nil {
					return apperr.New(apperr.Internal, "fee total would overflow")
				}
				cid, err := newID()
				if err != nil {
					return err
				}
				credits = append(credits, Transfer{ID: cid, From: transit, To: r.Receiver, AmountUnits: r.AmountUnits, FeeUnits: r.FeeUnits,
					NetUnits: net, FeeBps: int64(r.FeeBps), Memo: r.Memo, IdempotencyKey: xferClientPref + r.TransferID.String(), CreatedAt: now})
				credit, err := newEvent(EventCrossRegistryCredited, "xfer-"+r.TransferID.String()+"-credit", r.Receiver, now, []ledger.Posting{
					{Account: transit, Bucket: ledger.BucketLiquid, Delta: -r.AmountUnits},
					{Account: r.Receiver, Bucket: ledger.BucketLiquid, Delta: net},
					{Account: ledger.AccountFeeCollector, Bucket: ledger.BucketLiquid, Delta: r.FeeUnits},
				}, xferLegPayload{TransferID: r.TransferID, From: r.Sender, To: r.Receiver, AmountUnits: r.AmountUnits,
					FeeUnits: r.FeeUnits, NetUnits: net, SourceRegistry: source, TargetRegistry: self})
				if err != nil {
					return err
				}
				info, err := xferInfoEvent(r.TransferID, r.Sender, r.Receiver, r.AmountUnits, r.Memo, source, self, now)
				if err != nil {
					return err
				}
				envs = append(envs, credit, info)
				upd.Ids = append(upd.Ids, r.TransferID)
				upd.Statuses = append(upd.Statuses, string(xferstate.Committed))
				upd.CreditIds = append(upd.CreditIds, cid)
				final[r.TransferID] = xferstate.Committed
			}
			if limit := s.caps.For(source); !xferstate.CreditAllowed(tb.newUnits, limit) {
				capRefused = len(todo)
				return exposureRefusal(source, len(todo), tb.newUnits, limit)
			}
			if err := s.applyBalances(ctx, tx, locked, feeTotal, now); err != nil {
				return err
			}
			if err := s.insertXferRows(ctx, tx, credits, "transfer", now); err != nil {
				return err
			}
			if err := s.writeEvents(ctx, tx, envs); err != nil {
				return err
			}
		}
		for i := range out {
			if st, ok := final[out[i].ID]; ok {
				out[i].Status = st
			}
		}
		return s.q.XferPreparesUpdate(ctx, tx, upd)
	})
	if apperr.Is(err, apperr.ExposureCapExceeded) {
		s.countExposureRefused(source, capRefused)
		s.log.Warn("commit refused by the exposure cap", "peer", source, "transfers", capRefused, "err", err)
	}
	if err != nil {
		return nil, err
	}
	xferTermsMismatches.WithLabelValues(sideParticipant).Add(float64(termsRefused))
	return out, nil
}

// StalePrepare is an open prepare the participant sweeper asks about.
type StalePrepare struct {
	ID     uuid.UUID
	Source string
}

// StalePrepares returns up to limit prepares still open that were recorded
// before before, oldest first.
func (s *Store) StalePrepares(ctx context.Context, before time.Time, limit int) ([]StalePrepare, error) {
	if limit <= 0 || limit > MaxXferBatch {
		limit = MaxXferBatch
	}
	rows, err := s.q.XferPreparesStale(ctx, s.pool, tegdb.XferPreparesStaleParams{Before: before, MaxRows: int32(limit)})
	if err != nil {
		return nil, err
	}
	out := make([]StalePrepare, len(rows))
	for i, r := range rows {
		out[i] = StalePrepare{ID: r.TransferID, Source: r.SourceRegistry}
	}
	return out, nil
}

// AccountExists reports whether account id exists on this TEG as an agent
// or developer account (the home-registry lookup peers make).
func (s *Store) AccountExists(ctx context.Context, id string) (bool, error) {
	rows, err := s.q.XferAccountsExisting(ctx, s.pool, []string{id})
	if err != nil {
		return false, err
	}
	return len(rows) == 1 && ledger.IsUserKind(ledger.Kind(rows[0].Kind)), nil
}
