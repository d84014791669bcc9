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
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// The coordinator side of cross-registry transfers: accepting, deciding and
// finishing the transfers this TEG's senders make to peers' agents.

// Xfer is a cross-registry transfer as its coordinator (the sender's TEG)
// records it.
type Xfer struct {
	ID             uuid.UUID
	From, To       string
	Target         string // the receiver's registry
	AmountUnits    int64
	FeeUnits       int64 // charged by the target; known once committed
	Memo           string
	IdempotencyKey string
	HoldID         uuid.UUID
	Status         xferstate.Status
	Reason         string // why it was aborted
	WorkflowID     string // the settlement workflow carrying it ("" until started)
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Replayed       bool
}

func xferFromRow(r tegdb.Xfer) Xfer {
	x := Xfer{
		ID: r.ID, From: r.Sender, To: r.Receiver, Target: r.TargetRegistry, AmountUnits: r.AmountUnits,
		FeeUnits: r.FeeUnits, Memo: r.Memo, IdempotencyKey: r.ClientKey, HoldID: r.HoldID,
		Status: xferstate.Status(r.Status), Reason: r.Reason, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.WorkflowID != nil {
		x.WorkflowID = *r.WorkflowID
	}
	return x
}

// XferRequest asks to send AmountUnits to an agent of registry Target.
type XferRequest struct {
	From           string // agent or developer account here
	To             string // an agent DID or developer wallet whose home is Target (treasury: an allocation)
	Target         string
	AmountUnits    int64
	Memo           string
	IdempotencyKey string // per sender, like TransferRequest's
}

// IsAllocation reports whether r moves treasury to treasury: the
// mainframe funding an operator registry. Only the admin allocation
// route builds one (a payment's sender is its caller and its receiver an
// agent or developer), and only the target's configured funder may make
// it (PrepareXfers).
func (r XferRequest) IsAllocation() bool {
	return r.From == ledger.AccountTreasury && r.To == ledger.AccountTreasury
}

func (r XferRequest) validate() error {
	if !r.IsAllocation() {
		if err := userAccount("from", r.From); err != nil {
			return err
		}
		if err := userAccount("to", r.To); err != nil {
			return err
		}
	}
	if r.From == r.To && !r.IsAllocation() {
		return apperr.New(apperr.Invalid, "cannot transfer to the sending account itself")
	}
	if err := ledger.ValidateAmount(r.AmountUnits); err != nil {
		return apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if _, err := ledger.TransferFee(r.AmountUnits, ledger.BaseFeeBps); err != nil {
		return apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if _, err := ledger.KindOf(TransitAccount(r.Target)); err != nil || r.Target == "" {
		return apperr.New(apperr.Invalid, "target registry %q is not a registry ID", clipID(r.Target))
	}
	if err := validateText("memo", r.Memo, MaxMemoBytes); err != nil {
		return err
	}
	return validateClientKey(r.IdempotencyKey)
}

// BeginXfer accepts a cross-registry transfer: in one transaction it
// reserves AmountUnits of From's available balance with a hold (HoldPlaced)
// and records the transfer as pending. Errors: Invalid, NotFound (unknown
// sender), InsufficientFunds, IdempotencyReuse. A retry with the same key
// returns the original transfer (Replayed), whatever its state now.
func (s *Store) BeginXfer(ctx context.Context, r XferRequest) (Xfer, error) {
	if err := r.validate(); err != nil {
		return Xfer{}, err
	}
	if err := s.ensureTransit(ctx, r.Target); err != nil {
		return Xfer{}, err
	}
	var out Xfer
	for attempt := 0; ; attempt++ {
		err := s.db.Tx(ctx, func(tx pgx.Tx) error {
			if found, err := s.xferReplay(ctx, tx, r, &out); found || err != nil {
				return err
			}
			now := s.clock()
			if found, err := s.reserveLiquid(ctx, tx, r.From, r.AmountUnits, "transfer", now, func() (bool, error) {
				return s.xferReplay(ctx, tx, r, &out)
			}); found || err != nil {
				return err
			}
			id, err := newID()
			if err != nil {
				return err
			}
			holdID, err := newID()
			if err != nil {
				return err
			}
			h := Hold{ID: holdID, From: r.From, To: TransitAccount(r.Target), AmountUnits: r.AmountUnits, Status: HoldActive,
				Memo: r.Memo, IdempotencyKey: xferClientPref + id.String(), ExpiresAt: now.Add(XferHoldTTL), CreatedAt: now, UpdatedAt: now}
			if err := s.q.HoldInsert(ctx, tx, tegdb.HoldInsertParams{
				ID: h.ID, AccountID: h.From, Receiver: h.To, AmountUnits: h.AmountUnits, Memo: h.Memo,
				ClientKey: h.IdempotencyKey, ExpiresAt: h.ExpiresAt, Now: now,
			}); err != nil {
				return err
			}
			if err := s.q.XferInsert(ctx, tx, tegdb.XferInsertParams{
				ID: id, Sender: r.From, Receiver: r.To, TargetRegistry: r.Target, AmountUnits: r.AmountUnits,
				Memo: r.Memo, ClientKey: r.IdempotencyKey, HoldID: holdID, Now: now,
			}); err != nil {
				return err
			}
			out = Xfer{ID: id, From: r.From, To: r.To, Target: r.Target, AmountUnits: r.AmountUnits, Memo: r.Memo,
				IdempotencyKey: r.IdempotencyKey, HoldID: holdID, Status: xferstate.Pending, CreatedAt: now, UpdatedAt: now}
			return s.writeHoldEvent(ctx, tx, EventHoldPlaced, "hold-placed-", h, now)
		})
		if err != nil && attempt == 0 && isUniqueViolation(err, "xfers_client_key") {
			continue // a concurrent duplicate committed first: replay it
		}
		return out, err
	}
}

func (s *Store) xferReplay(ctx context.Context, tx pgx.Tx, r XferRequest, out *Xfer) (bool, error) {
	row, err := s.q.XferByClientKey(ctx, tx, tegdb.XferByClientKeyParams{Sender: r.From, ClientKey: r.IdempotencyKey})
	if db.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	x := xferFromRow(row)
	if x.To != r.To || x.AmountUnits != r.AmountUnits || x.Memo != r.Memo {
		return true, apperr.New(apperr.IdempotencyReuse, "idempotency key %q was already used for a different transfer", r.IdempotencyKey)
	}
	x.Replayed = true
	*out = x
	return true, nil
}

// GetXfer returns cross-registry transfer id, or NotFound.
func (s *Store) GetXfer(ctx context.Context, id uuid.UUID) (Xfer, error) {
	row, err := s.q.XferGet(ctx, s.pool, id)
	if err != nil {
		return Xfer{}, db.NotFound(err, "transfer %s not found", id)
	}
	return xferFromRow(row), nil
}

// SetXferWorkflow records the settlement workflow carrying ids.
func (s *Store) SetXferWorkflow(ctx context.Context, workflowID string, ids []uuid.UUID) error {
	return s.q.XfersSetWorkflow(ctx, s.pool, tegdb.XfersSetWorkflowParams{WorkflowID: &workflowID, Ids: ids})
}

// UnsettledXfers returns up to limit transfers still pending, committing
// or aborting that were accepted before before, oldest first.
func (s *Store) UnsettledXfers(ctx context.Context, before time.Time, limit int) ([]Xfer, error) {
	if limit <= 0 || limit > MaxXferBatch {
		limit = MaxXferBatch
	}
	rows, err := s.q.XfersUnsettled(ctx, s.pool, tegdb.XfersUnsettledParams{Before: before, MaxRows: int32(limit)})
	if err != nil {
		return nil, err
	}
	out := make([]Xfer, len(rows))
	for i, r := range rows {
		out[i] = xferFromRow(r)
	}
	return out, nil
}

// XferStatuses returns the coordinator's status of each of ids it knows
// (the decision log participants ask about).
func (s *Store) XferStatuses(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]Xfer, error) {
	if len(ids) > MaxXferBatch {
		return nil, apperr.New(apperr.Invalid, "at most %d transfers per call", MaxXferBatch)
	}
	rows, err := s.q.XfersGet(ctx, s.pool, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]Xfer, len(rows))
	for _, r := range rows {
		out[r.ID] = xferFromRow(r)
	}
	return out, nil
}

// XferDecision is the coordinator's decision for one transfer.
type XferDecision struct {
	ID     uuid.UUID
	Commit bool
	Reason string // why it aborts (≤ 500 bytes)
	// KeepHoldOnAbort: if the transfer aborts, record it as aborting and
	// leave the hold active until VoidAbortedXfers (the saga calls it once
	// the target acknowledged the abort), so a saga parked on a failing
	// compensation still shows the reservation. False voids the hold in
	// this transaction (sagas started before that change).
	KeepHoldOnAbort bool
	// Mismatch, when set, says which terms the target reported
	// (Reported; nil when it reported none) differ from this TEG's
	// record: the settlement turned the decision into an abort for that
	// reason. If the transfer was still pending, the abort is recorded
	// with CrossRegistryTermsMismatch and counted.
	Mismatch string
	Reported *xferstate.Terms
}

// longer be posted (it expired) aborts instead. A transfer already decided keeps its decision
// (idempotent): the result reports every transfer's status after the call.
// Unknown IDs are NotFound for the whole call. The rule itself is
// xferstate.Decide; this method locks, batches and writes its verdicts.
func (s *Store) DecideXfers(ctx context.Context, ds []XferDecision) (map[uuid.UUID]Xfer, error) {
	if len(ds) == 0 || len(ds) > MaxXferBatch {
		return nil, apperr.New(apperr.Invalid, "decide 1..%d transfers per call", MaxXferBatch)
	}
	ids := make([]uuid.UUID, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
		if len(d.Reason) > 500 {
			ds[i].Reason = d.Reason[:500]
		}
	}
	var out map[uuid.UUID]Xfer
	committed := 0
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		now := s.clock()
		rows, err := s.q.XfersLock(ctx, tx, ids)
		if err != nil {
			return err
		}
		out = make(map[uuid.UUID]Xfer, len(rows))
		for _, r := range rows {
			out[r.ID] = xferFromRow(r)
		}
		var open []XferDecision
		var holdIDs []uuid.UUID
		seen := map[uuid.UUID]bool{}
		for _, d := range ds {
			x, ok := out[d.ID]
			if !ok {
				return apperr.New(apperr.NotFound, "transfer %s not found", d.ID)
			}
			if x.Status != xferstate.Pending || seen[d.ID] {
				continue
			}
			seen[d.ID] = true
			open = append(open, d)
			holdIDs = append(holdIDs, x.HoldID)
		}
		if len(open) == 0 {
			return nil
		}
		hrows, err := s.q.XferHoldsLock(ctx, tx, holdIDs)
		if err != nil {
			return err
		}
		holds := make(map[uuid.UUID]Hold, len(hrows))
		for _, r := range hrows {
			holds[r.ID] = holdFromRow(r)
		}
		keys := map[balKey]struct{}{}
		for _, d := range open {
			x := out[d.ID]
			keys[balKey{x.From, ledger.BucketLiquid}] = struct{}{}
			keys[balKey{TransitAccount(x.Target), ledger.BucketLiquid}] = struct{}{}
		}
		// The decisions need no balance values (an active hold already
		// reserves its funds), so the balance rows are only locked at the
		// end, just before their netted update: the sender rows are shared
		// with concurrent accepts, which would otherwise wait behind this
		// whole batch's inserts. Deltas accumulate from zero here.
		locked := make(map[balKey]*lockedBalance, len(keys))
		for k := range keys {
			locked[k] = &lockedBalance{}
		}
		var (
			mismatches int
			posted     []Transfer
			envs       []events.Envelope
			upd        tegdb.XfersUpdateParams
			hf         tegdb.XferHoldsFinishParams
			self       = s.outbox.Registry
			finishHold = func(h Hold, st HoldStatus, postedUnits int64, tid uuid.UUID) {
				hf.Ids = append(hf.Ids, h.ID)
				hf.Statuses = append(hf.Statuses, string(st))
				hf.PostedUnits = append(hf.PostedUnits, postedUnits)
				hf.TransferIds = append(hf.TransferIds, tid)
			}
		)
		for _, d := range open {
			x := out[d.ID]
			h, ok := holds[x.HoldID]
			if !ok {
				return apperr.New(apperr.Internal, "transfer %s: hold %s missing", x.ID, x.HoldID)
			}
			from := locked[balKey{x.From, ledger.BucketLiquid}]
			transit := locked[balKey{TransitAccount(x.Target), ledger.BucketLiquid}]
			if from == nil || transit == nil {
				return apperr.New(apperr.Internal, "transfer %s refers to a missing balance", x.ID)
			}
			dec := xferstate.Decide(x.Status, xferstate.Proposal{Commit: d.Commit, Reason: d.Reason, KeepHoldOnAbort: d.KeepHoldOnAbort},
				xferstate.Hold{Active: h.Status == HoldActive, ExpiresAt: h.ExpiresAt}, now)
			if !dec.Changed {
				return apperr.New(apperr.Internal, "transfer %s: %s is not open for a decision", x.ID, x.Status)
			}
			switch dec.Hold {
			case xferstate.KeepHold: // aborting (the hold waits for the target's acknowledgement), or nothing left to void
			case xferstate.VoidHold:
				from.newHeld -= h.AmountUnits
				finishHold(h, HoldVoided, 0, uuid.Nil)
				ev, err := voidedHoldEvent(h, now)
				if err != nil {
					return err
				}
				envs = append(envs, ev)
			case xferstate.PostHold:
				from.newHeld -= h.AmountUnits
				from.newUnits -= h.AmountUnits // reserved: units ≥ held ≥ amount
				if transit.newUnits, err = money.Add(transit.newUnits, h.AmountUnits); err != nil {
					return apperr.New(apperr.Internal, "transit balance would overflow")
				}
				tid, err := newID()
				if err != nil {
					return err
				}
				holdID := h.ID
				posted = append(posted, Transfer{ID: tid, From: x.From, To: h.To, AmountUnits: h.AmountUnits, NetUnits: h.AmountUnits,
					Memo: x.Memo, IdempotencyKey: xferClientPref + x.ID.String(), HoldID: &holdID, CreatedAt: now})
				finishHold(h, HoldPosted, h.AmountUnits, tid)
				h.Status, h.PostedUnits, h.TransferID, h.UpdatedAt = HoldPosted, h.AmountUnits, &tid, now
				evs, err := xferDebitEvents(x, h, self, now)
				if err != nil {
					return err
				}
				envs = append(envs, evs...)
			}
			x.Status, x.Reason, x.UpdatedAt = dec.Status, dec.Reason, now
			out[x.ID] = x
			if d.Mismatch != "" && !d.Commit {
				ev, err := xferMismatchEvent(x, d.Reported, d.Mismatch, self, now)
				if err != nil {
					return err
				}
				envs = append(envs, ev)
				mismatches++
			}
			upd.Ids = append(upd.Ids, x.ID)
			upd.Statuses = append(upd.Statuses, string(x.Status))
			upd.Reasons = append(upd.Reasons, x.Reason)
			upd.Fees = append(upd.Fees, 0)
		}
		hf.Now = now
		if err := s.q.XferHoldsFinish(ctx, tx, hf); err != nil {
			return err
		}
		upd.Now = now
		if err := s.q.XfersUpdate(ctx, tx, upd); err != nil {
			return err
		}
		if err := s.insertXferRows(ctx, tx, posted, "hold_post", now); err != nil {
			return err
		}
		if err := s.writeEvents(ctx, tx, envs); err != nil {
			return err
		}
		// Now take the balance locks, in the global order (xfers → holds →
		// balances, as before), and apply the netted deltas.
		got, err := s.lockBalances(ctx, tx, keys)
		if err != nil {
			return err
		}
		if len(got) != len(keys) {
			return apperr.New(apperr.Internal, "a cross-registry decision refers to a missing balance")
		}
		if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
			return err
		}
		committed = mismatches
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Counted once the transaction committed (a retried one counts once).
	xferTermsMismatches.WithLabelValues(sideCoordinator).Add(float64(committed))
	return out, nil
}

func voidedHoldEvent(h Hold, now time.Time) (events.Envelope, error) {
	h.Status, h.UpdatedAt = HoldVoided, now
	return holdEvent(EventHoldVoided, "hold-voided-", h, now)
}

// VoidAbortedXfers finishes aborting transfers once the target
// acknowledged their abort: in one transaction it voids each one's hold
// if still active (HoldVoided hold-voided-<hold id>: the sender's funds
// are released) and moves it to aborted. Idempotent: transfers in any
// other state are left alone; the result reports every transfer's status
// after the call. Unknown IDs are NotFound for the whole call.
func (s *Store) VoidAbortedXfers(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]Xfer, error) {
	if len(ids) == 0 || len(ids) > MaxXferBatch {
		return nil, apperr.New(apperr.Invalid, "void 1..%d transfers per call", MaxXferBatch)
	}
	var out map[uuid.UUID]Xfer
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		now := s.clock()
		rows, err := s.q.XfersLock(ctx, tx, ids)
		if err != nil {
			return err
		}
		out = make(map[uuid.UUID]Xfer, len(rows))
		for _, r := range rows {
			out[r.ID] = xferFromRow(r)
		}
		var open []Xfer
		var holdIDs []uuid.UUID
		seen := map[uuid.UUID]bool{}
		for _, id := range ids {
			x, ok := out[id]
			if !ok {
				return apperr.New(apperr.NotFound, "transfer %s not found", id)
			}
			if x.Status != xferstate.Aborting || seen[id] {
				continue
			}
			seen[id] = true
			open = append(open, x)
			holdIDs = append(holdIDs, x.HoldID)
		}
		if len(open) == 0 {
			return nil
		}
		hrows, err := s.q.XferHoldsLock(ctx, tx, holdIDs)
		if err != nil {
			return err
		}
		holds := make(map[uuid.UUID]Hold, len(hrows))
		keys := map[balKey]struct{}{}
		for _, r := range hrows {
			h := holdFromRow(r)
			holds[h.ID] = h
			if h.Status == HoldActive {
				keys[balKey{h.From, ledger.BucketLiquid}] = struct{}{}
			}
		}
		locked, err := s.lockBalances(ctx, tx, keys)
		if err != nil {
			return err
		}
		var (
			envs []events.Envelope
			upd  = tegdb.XfersUpdateParams{Now: now}
			hf   = tegdb.XferHoldsFinishParams{Now: now}
		)
		for _, x := range open {
			h, ok := holds[x.HoldID]
			if !ok {
				return apperr.New(apperr.Internal, "transfer %s: hold %s missing", x.ID, x.HoldID)
			}
			// A hold no longer active expired before the decision (the
			// expiry sweep leaves aborting ones alone): nothing to release.
			dec := xferstate.AckAbort(x.Status, h.Status == HoldActive)
			if dec.Hold == xferstate.VoidHold {
				from := locked[balKey{h.From, ledger.BucketLiquid}]
				if from == nil {
					return apperr.New(apperr.Internal, "transfer %s refers to a missing balance", x.ID)
				}
				from.newHeld -= h.AmountUnits
				hf.Ids = append(hf.Ids, h.ID)
				hf.Statuses = append(hf.Statuses, string(HoldVoided))
				hf.PostedUnits = append(hf.PostedUnits, 0)
				hf.TransferIds = append(hf.TransferIds, uuid.Nil)
				ev, err := voidedHoldEvent(h, now)
				if err != nil {
					return err
				}
				envs = append(envs, ev)
			}
			x.Status, x.UpdatedAt = dec.Status, now
			out[x.ID] = x
			upd.Ids = append(upd.Ids, x.ID)
			upd.Statuses = append(upd.Statuses, string(x.Status))
			upd.Reasons = append(upd.Reasons, x.Reason)
			upd.Fees = append(upd.Fees, 0)
		}
		if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
			return err
		}
		if err := s.q.XferHoldsFinish(ctx, tx, hf); err != nil {
			return err
		}
		if err := s.q.XfersUpdate(ctx, tx, upd); err != nil {
			return err
		}
		return s.writeEvents(ctx, tx, envs)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func xferDebitEvents(x Xfer, h Hold, self string, now time.Time) ([]events.Envelope, error) {
	debit, err := newEvent(EventCrossRegistryDebited, "xfer-"+x.ID.String()+"-debit", x.From, now, []ledger.Posting{
		{Account: x.From, Bucket: ledger.BucketLiquid, Delta: -x.AmountUnits},
		{Account: TransitAccount(x.Target), Bucket: ledger.BucketLiquid, Delta: x.AmountUnits},
	}, xferLegPayload{TransferID: x.ID, HoldID: &h.ID, PostedTransferID: h.TransferID, From: x.From, To: x.To,
		AmountUnits: x.AmountUnits, NetUnits: x.AmountUnits, SourceRegistry: self, TargetRegistry: x.Target})
	if err != nil {
		return nil, err
	}
	info, err := xferInfoEvent(x.ID, x.From, x.To, x.AmountUnits, x.Memo, self, x.Target, now)
	if err != nil {
		return nil, err
	}
	return []events.Envelope{debit, info}, nil
}

// charged (fees by transfer ID). Transfers in another state are left alone.
func (s *Store) FinishXfers(ctx context.Context, fees map[uuid.UUID]int64) error {
	if len(fees) == 0 {
		return nil
	}
	return s.db.Tx(ctx, func(tx pgx.Tx) error {
		now := s.clock()
		ids := make([]uuid.UUID, 0, len(fees))
		for id := range fees {
			ids = append(ids, id)
		}
		rows, err := s.q.XfersLock(ctx, tx, ids)
		if err != nil {
			return err
		}
		upd := tegdb.XfersUpdateParams{Now: now}
		for _, r := range rows {
			dec := xferstate.ConfirmCredit(xferstate.Status(r.Status))
			if !dec.Changed {
				continue
			}
			upd.Ids = append(upd.Ids, r.ID)
			upd.Statuses = append(upd.Statuses, string(dec.Status))
			upd.Reasons = append(upd.Reasons, "")
			upd.Fees = append(upd.Fees, fees[r.ID])
		}
		if len(upd.Ids) == 0 {
			return nil
		}
		return s.q.XfersUpdate(ctx, tx, upd)
	})
}
