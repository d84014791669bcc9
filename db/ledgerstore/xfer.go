package ledgerstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
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

// Cross-registry transfers (SPEC §6.1). This TEG plays two roles:
//
//   - coordinator, for transfers its senders make to agents of a peer
//     registry: BeginXfer reserves the amount with a hold and records the
//     transfer (pending); DecideXfers records the decision, posting the
//     hold to transit:<target> (commit) or marking the transfer aborting
//     with its hold still active (abort); VoidAbortedXfers voids the hold
//     once the target acknowledged the abort; FinishXfers marks committed
//     transfers done once the target credited them.
//   - participant, for transfers peers send to its agents: PrepareXfers
//     validates receivers and records prepares, CommitXfers credits the
//     receiver from transit:<source> (fee to this registry's
//     fee_collector), AbortXfers drops prepares.
//
// Every operation is idempotent by transfer ID and takes a batch: one
// settlement workflow carries many transfers of one (source, target) pair
// through one transaction per step.

// Event types of the cross-registry legs (events.TypeCrossRegistry*).
const (
	EventCrossRegistryDebited  = events.TypeCrossRegistryDebited  // xfer-<id>-debit (source)
	EventCrossRegistryCredited = events.TypeCrossRegistryCredited // xfer-<id>-credit (target)
)

// Limits.
const (
	MaxXferBatch   = 1000           // transfers per decide/prepare/commit/abort call
	XferHoldTTL    = 24 * time.Hour // how long a cross-registry hold may wait for its decision
	xferClientPref = "#xfer:"       // store-made keys of holds and transfer rows (never a caller key)
)

// XferStatus is a transfer's state on the coordinator.
type XferStatus string

// Coordinator statuses.
const (
	XferPending    XferStatus = "pending"    // hold placed, no decision yet
	XferCommitting XferStatus = "committing" // decided commit: funds in transit, target not yet credited
	XferCommitted  XferStatus = "committed"  // the target credited the receiver
	// XferAborting: decided abort (the decision log answers abort), the
	// hold still reserves the funds until the target acknowledged the
	// abort and the saga voids it.
	XferAborting XferStatus = "aborting"
	XferAborted  XferStatus = "aborted" // hold voided
)

// Participant statuses of a prepare.
const (
	PrepPrepared  = "prepared"
	PrepRejected  = "rejected"
	PrepCommitted = "committed"
	PrepAborted   = "aborted"
	PrepUnknown   = "unknown" // no prepare recorded for the ID
)

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
	Status         XferStatus
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
		Status: XferStatus(r.Status), Reason: r.Reason, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.WorkflowID != nil {
		x.WorkflowID = *r.WorkflowID
	}
	return x
}

// XferRequest asks to send AmountUnits to an agent of registry Target.
type XferRequest struct {
	From           string // agent or developer account here
	To             string // an agent DID whose home is Target
	Target         string
	AmountUnits    int64
	Memo           string
	IdempotencyKey string // per sender, like TransferRequest's
}

func (r XferRequest) validate() error {
	if err := userAccount("from", r.From); err != nil {
		return err
	}
	if err := userAccount("to", r.To); err != nil {
		return err
	}
	if r.From == r.To {
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

// CrossRegistry reports whether h reserves a cross-registry transfer (only
// its settlement may post or void it).
func (h Hold) CrossRegistry() bool { return strings.HasPrefix(h.IdempotencyKey, xferClientPref) }

// TransitAccount is the account that carries value to or from peer.
func TransitAccount(peer string) string { return "transit:" + peer }

func clipID(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// transitOpened remembers transit accounts known to exist (they are never
// deleted), so the hot path opens each one once per process.
var transitOpened sync.Map // "<pool ptr>/<account>" → struct{}

func (s *Store) ensureTransit(ctx context.Context, peer string) error {
	acct := TransitAccount(peer)
	key := fmt.Sprintf("%p/%s", s.pool, acct)
	if _, ok := transitOpened.Load(key); ok {
		return nil
	}
	if _, _, err := s.OpenAccount(ctx, acct, ledger.KindTransit); err != nil {
		return err
	}
	transitOpened.Store(key, struct{}{})
	return nil
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
				IdempotencyKey: r.IdempotencyKey, HoldID: holdID, Status: XferPending, CreatedAt: now, UpdatedAt: now}
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
}

// xferInfo is the payload both TEGs put on TokensTransferred xfer-<id>:
// identical from either side, so whichever copy the EventStore keeps says
// the same. It carries no postings; the legs are the side-specific
// CrossRegistryDebited and CrossRegistryCredited events.
type xferInfo struct {
	TransferID     uuid.UUID `json:"transfer_id"`
	From           string    `json:"from"`
	To             string    `json:"to"`
	AmountUnits    int64     `json:"amount_units"`
	Memo           string    `json:"memo,omitempty"`
	SourceRegistry string    `json:"source_registry"`
	TargetRegistry string    `json:"target_registry"`
}

type xferLegPayload struct {
	TransferID uuid.UUID `json:"transfer_id"`
	// HoldID and PostedTransferID (debit only): the sender's hold this
	// debit posts and the ledger transfer recording it. The debit is the
	// hold's post: a cross-registry hold has no HoldPosted event of its
	// own (HoldPlaced, then CrossRegistryDebited or HoldVoided).
	HoldID           *uuid.UUID `json:"hold_id,omitempty"`
	PostedTransferID *uuid.UUID `json:"posted_transfer_id,omitempty"`

	From           string `json:"from"`
	To             string `json:"to"`
	AmountUnits    int64  `json:"amount_units"`
	FeeUnits       int64  `json:"fee_units"`
	NetUnits       int64  `json:"net_units"`
	SourceRegistry string `json:"source_registry"`
	TargetRegistry string `json:"target_registry"`
}

// DecideXfers records the decision for each transfer in one transaction.
// Commit posts the hold to transit:<target> (CrossRegistryDebited
// xfer-<id>-debit, which names the hold it posts, and TokensTransferred
// xfer-<id>; no separate HoldPosted: it repeated the debit) and
// moves the transfer to committing; abort moves it to aborting and keeps
// the hold (KeepHoldOnAbort; VoidAbortedXfers finishes it), or voids the
// hold (HoldVoided) and moves it to aborted. A commit whose hold can no
// longer be posted (it expired) aborts instead. A transfer already decided keeps its decision
// (idempotent): the result reports every transfer's status after the call.
// Unknown IDs are NotFound for the whole call.
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
			if x.Status != XferPending || seen[d.ID] {
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
			commit, reason := d.Commit, d.Reason
			if commit && (h.Status != HoldActive || !now.Before(h.ExpiresAt)) {
				commit, reason = false, "the sender's hold expired before the decision"
			}
			switch {
			case !commit && d.KeepHoldOnAbort:
				x.Status, x.Reason = XferAborting, reason
			case !commit:
				if h.Status == HoldActive {
					from.newHeld -= h.AmountUnits
					finishHold(h, HoldVoided, 0, uuid.Nil)
					ev, err := voidedHoldEvent(h, now)
					if err != nil {
						return err
					}
					envs = append(envs, ev)
				}
				x.Status, x.Reason = XferAborted, reason
			default:
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
				x.Status, x.Reason = XferCommitting, ""
			}
			x.UpdatedAt = now
			out[x.ID] = x
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
		return s.applyBalances(ctx, tx, locked, 0, now)
	})
	if err != nil {
		return nil, err
	}
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
			if x.Status != XferAborting || seen[id] {
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
			if h.Status == HoldActive {
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
			x.Status, x.UpdatedAt = XferAborted, now
			out[x.ID] = x
			upd.Ids = append(upd.Ids, x.ID)
			upd.Statuses = append(upd.Statuses, string(XferAborted))
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

func xferInfoEvent(id uuid.UUID, from, to string, amount int64, memo, source, target string, now time.Time) (events.Envelope, error) {
	return newEvent(EventTokensTransferred, "xfer-"+id.String(), from, now, nil, xferInfo{
		TransferID: id, From: from, To: to, AmountUnits: amount, Memo: memo, SourceRegistry: source, TargetRegistry: target,
	})
}

// insertXferRows writes journal entries and transfer rows for the ledger
// moves of cross-registry legs (their events are written by the caller).
func (s *Store) insertXferRows(ctx context.Context, tx pgx.Tx, ts []Transfer, kind string, now time.Time) error {
	n := len(ts)
	if n == 0 {
		return nil
	}
	idBuf := make([]byte, 32*n)
	jp := tegdb.JournalEntriesInsertTransfersParams{
		Now: now, Ids: make([][]byte, n), Kinds: make([]string, n), Senders: make([]string, n),
		Receivers: make([]string, n), Amounts: make([]int64, n), Fees: make([]int64, n),
	}
	tp := tegdb.TransfersInsertParams{
		Now: now, Ids: jp.Ids, Senders: jp.Senders, Receivers: jp.Receivers, Amounts: jp.Amounts, Fees: jp.Fees,
		FeeBps: make([]int32, n), Memos: make([]string, n), ClientKeys: make([]string, n), HoldIds: make([][]byte, n),
	}
	for i, t := range ts {
		jp.Ids[i] = uuidBytes(idBuf, i, t.ID)
		jp.Kinds[i], jp.Senders[i], jp.Receivers[i], jp.Amounts[i], jp.Fees[i] = kind, t.From, t.To, t.AmountUnits, t.FeeUnits
		tp.FeeBps[i], tp.Memos[i], tp.ClientKeys[i] = int32(t.FeeBps), t.Memo, t.IdempotencyKey
		hold := uuid.Nil
		if t.HoldID != nil {
			hold = *t.HoldID
		}
		tp.HoldIds[i] = uuidBytes(idBuf, n+i, hold)
	}
	if err := s.q.JournalEntriesInsertTransfers(ctx, tx, jp); err != nil {
		return mapConstraint(err)
	}
	return mapConstraint(s.q.TransfersInsert(ctx, tx, tp))
}

// FinishXfers marks committing transfers committed with the fee the target
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
			if XferStatus(r.Status) != XferCommitting {
				continue
			}
			upd.Ids = append(upd.Ids, r.ID)
			upd.Statuses = append(upd.Statuses, string(XferCommitted))
			upd.Reasons = append(upd.Reasons, "")
			upd.Fees = append(upd.Fees, fees[r.ID])
		}
		if len(upd.Ids) == 0 {
			return nil
		}
		return s.q.XfersUpdate(ctx, tx, upd)
	})
}

// --- participant --------------------------------------------------------------

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
	Status   string // PrepPrepared, PrepRejected, PrepCommitted, PrepAborted or PrepUnknown
	Reason   string
	FeeUnits int64
}

// PrepareXfers validates and records transfers from source: a receiver
// that is an agent or developer account here and an amount that carries
// the 0.5% fee are prepared (nothing moves yet), anything else is rejected
// with a reason. Idempotent by transfer ID: a repeated prepare answers
// from the first record (an ID recorded with other parameters or from
// another source is reported rejected).
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
		status, reason := PrepPrepared, ""
		fee, ferr := ledger.TransferFee(it.AmountUnits, ledger.BaseFeeBps)
		switch {
		case userAccount("from", it.From) != nil:
			status, reason = PrepRejected, "the sender is not an agent or developer account"
		case !ledger.IsUserKind(kinds[it.To]):
			status, reason = PrepRejected, "receiver "+clipID(it.To)+" has no account on this registry"
		case ferr != nil:
			status, reason = PrepRejected, ferr.Error()
		case validateText("memo", it.Memo, MaxMemoBytes) != nil:
			status, reason = PrepRejected, "invalid memo"
		}
		if it.AmountUnits <= 0 {
			return nil, apperr.New(apperr.Invalid, "transfer %s: amount_units must be positive", it.ID)
		}
		memo := it.Memo
		if status == PrepRejected {
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
		p.Statuses = append(p.Statuses, status)
		p.Reasons = append(p.Reasons, reason)
	}
	if err := s.q.XferPreparesInsert(ctx, s.pool, p); err != nil {
		return nil, err
	}
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
		case r.SourceRegistry != source || r.Sender != it.From || r.Receiver != it.To || r.AmountUnits != it.AmountUnits:
			out[i] = XferPrepareResult{ID: it.ID, Status: PrepRejected, Reason: "transfer id already prepared with other parameters"}
		default:
			out[i] = XferPrepareResult{ID: it.ID, Status: r.Status, Reason: r.Reason, FeeUnits: r.FeeUnits}
		}
	}
	return out, nil
}

// CommitXfers credits prepared transfers from source in one transaction:
// transit:<source> −amount, receiver +(amount − fee), fee_collector +fee
// (CrossRegistryCredited xfer-<id>-credit, TokensTransferred xfer-<id>).
// Idempotent: a committed prepare answers committed again. A prepare that
// was rejected or aborted, or was never recorded, is reported as such
// (nothing moves for it).
func (s *Store) CommitXfers(ctx context.Context, source string, ids []uuid.UUID) ([]XferPrepareResult, error) {
	return s.finishPrepares(ctx, source, ids, true)
}

// AbortXfers drops prepared transfers from source (nothing had moved).
// Idempotent; an unknown ID is reported PrepUnknown (nothing to abort); a
// committed one is reported committed (a protocol violation the caller
// must surface: a commit decision is never undone).
func (s *Store) AbortXfers(ctx context.Context, source string, ids []uuid.UUID) ([]XferPrepareResult, error) {
	return s.finishPrepares(ctx, source, ids, false)
}

func (s *Store) finishPrepares(ctx context.Context, source string, ids []uuid.UUID, commit bool) ([]XferPrepareResult, error) {
	if len(ids) == 0 || len(ids) > MaxXferBatch {
		return nil, apperr.New(apperr.Invalid, "1..%d transfers per call", MaxXferBatch)
	}
	var out []XferPrepareResult
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		now := s.clock()
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
				out[i] = XferPrepareResult{ID: id, Status: PrepUnknown}
				continue
			case r.SourceRegistry != source:
				out[i] = XferPrepareResult{ID: id, Status: PrepUnknown, Reason: "prepared by another registry"}
				continue
			}
			out[i] = XferPrepareResult{ID: id, Status: r.Status, Reason: r.Reason, FeeUnits: r.FeeUnits}
			if r.Status == PrepPrepared && !seen[id] {
				seen[id] = true
				todo = append(todo, r)
			}
		}
		if len(todo) == 0 {
			return nil
		}
		upd := tegdb.XferPreparesUpdateParams{Now: now}
		final := map[uuid.UUID]string{}
		if !commit {
			for _, r := range todo {
				upd.Ids = append(upd.Ids, r.TransferID)
				upd.Statuses = append(upd.Statuses, PrepAborted)
				upd.CreditIds = append(upd.CreditIds, uuid.Nil)
				final[r.TransferID] = PrepAborted
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
				upd.Statuses = append(upd.Statuses, PrepCommitted)
				upd.CreditIds = append(upd.CreditIds, cid)
				final[r.TransferID] = PrepCommitted
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
	if err != nil {
		return nil, err
	}
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
