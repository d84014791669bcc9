package ledgerstore

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
)

// Bridge operation kinds and statuses (see db/migrations/teg/00140_bridge.sql).
const (
	BridgeSend   = "send"   // lock here, the peer mints wrapped
	BridgeRedeem = "redeem" // burn wrapped here, the peer releases its escrow

	BridgeMint    = "mint"    // inbound: mint wrapped:<peer> to the recipient
	BridgeRelease = "release" // inbound: release bridge:<peer> escrow to the recipient

	BridgePending   = "pending"
	BridgeCompleted = "completed"
	BridgeRefunded  = "refunded"

	BridgeApplied  = "applied"  // inbound applied
	BridgeFenced   = "fenced"   // inbound never applied and never will be
	BridgeRejected = "rejected" // inbound refused now (and fenced)
)

// fenceRecipient stands for the terms of a fence written by a question.
const fenceRecipient = "-"

var bridgeFrameID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// BridgeTransfer is a bridge operation this TEG started.
type BridgeTransfer struct {
	ID          uuid.UUID
	Kind        string // BridgeSend or BridgeRedeem
	PeerFrame   string
	Sender      string
	Recipient   string
	AmountUnits int64
	ClientKey   string
	Status      string
	Reason      string
	FeeUnits    int64 // charged by the target frame on a send (reported back)
	ExpiresAt   time.Time
	WorkflowID  string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Replayed    bool
}

func bridgeFromRow(r tegdb.BridgeTransfer) BridgeTransfer {
	return BridgeTransfer{ID: r.ID, Kind: r.Kind, PeerFrame: r.PeerFrame, Sender: r.Sender, Recipient: r.Recipient,
		AmountUnits: r.AmountUnits, ClientKey: r.ClientKey, Status: r.Status, Reason: r.Reason, FeeUnits: r.FeeUnits,
		ExpiresAt: r.ExpiresAt.UTC(), WorkflowID: r.WorkflowID, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// BridgeRequest starts a bridge operation.
type BridgeRequest struct {
	Kind      string
	PeerFrame string
	Sender    string // an agent or developer account of this TEG
	// Recipient: on a send, an account of the peer frame; on a redeem, an
	// account of the peer frame too (the origin frame, where the escrow is).
	Recipient   string
	AmountUnits int64
	ClientKey   string
	// Window is how long the peer may apply the operation.
	Window time.Duration
	// WorkflowID names the workflow that will carry the operation.
	WorkflowID func(id uuid.UUID) string
}

func (r BridgeRequest) validate() error {
	if r.Kind != BridgeSend && r.Kind != BridgeRedeem {
		return apperr.New(apperr.Invalid, "bridge kind must be send or redeem")
	}
	if !bridgeFrameID.MatchString(r.PeerFrame) {
		return apperr.New(apperr.Invalid, "frame %q is not a frame id", clip(r.PeerFrame))
	}
	if err := userAccount("from", r.Sender); err != nil {
		return err
	}
	if err := userAccount("to", r.Recipient); err != nil {
		return err
	}
	if err := ledger.ValidateAmount(r.AmountUnits); err != nil {
		return apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if r.Window <= 0 || r.WorkflowID == nil {
		return apperr.New(apperr.Internal, "bridge request without a window or workflow id")
	}
	return validateClientKey(r.ClientKey)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// bridgePayload is the payload of every bridge event.
type bridgePayload struct {
	TransferID  uuid.UUID `json:"transfer_id"`
	PeerFrame   string    `json:"peer_frame"`
	From        string    `json:"from,omitempty"`
	To          string    `json:"to,omitempty"`
	AmountUnits int64     `json:"amount_units"`
	FeeUnits    int64     `json:"fee_units,omitempty"`
	Reason      string    `json:"reason,omitempty"`
}

// BridgeStart records a bridge operation and moves its first leg in one
// transaction: a send locks amount from the sender's liquid balance into
// bridge:<peer>'s locked_bridge (BridgeLocked); a redeem burns the
// sender's wrapped:<peer> tokens (WrappedBurned). A retry with the same
// (sender, client key) returns the original (Replayed); different terms
// are IdempotencyReuse. Only the mainframe bridges (FailedPrecondition).
// Errors: Invalid, NotFound (sender), InsufficientFunds.
func (s *Store) BridgeStart(ctx context.Context, r BridgeRequest) (BridgeTransfer, error) {
	if err := r.validate(); err != nil {
		return BridgeTransfer{}, err
	}
	if !s.mainframe {
		return BridgeTransfer{}, apperr.New(apperr.FailedPrecondition, "only the frame's mainframe TEG bridges to other frames")
	}
	replay := func(q tegdb.DBTX) (BridgeTransfer, bool, error) {
		row, err := s.q.BridgeTransferByKey(ctx, q, tegdb.BridgeTransferByKeyParams{Sender: r.Sender, ClientKey: r.ClientKey})
		if db.IsNotFound(err) {
			return BridgeTransfer{}, false, nil
		}
		if err != nil {
			return BridgeTransfer{}, false, err
		}
		if row.Kind != r.Kind || row.PeerFrame != r.PeerFrame || row.Recipient != r.Recipient || row.AmountUnits != r.AmountUnits {
			return BridgeTransfer{}, true, apperr.New(apperr.IdempotencyReuse, "idempotency key %q was already used for a different bridge operation", r.ClientKey)
		}
		t := bridgeFromRow(row)
		t.Replayed = true
		return t, true, nil
	}
	if t, found, err := replay(s.pool); found || err != nil {
		return t, err
	}
	id, err := newID()
	if err != nil {
		return BridgeTransfer{}, err
	}
	now := s.clock()
	var out BridgeTransfer
	err = s.db.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := s.q.AccountGet(ctx, tx, r.Sender); err != nil {
			return db.NotFound(err, "account %q not found", r.Sender)
		}
		var postings []ledger.Posting
		var typ, step string
		if r.Kind == BridgeSend {
			escrow := ledger.BridgeEscrowAccount(r.PeerFrame)
			if err := s.ensureSystemAccount(ctx, tx, escrow, ledger.BucketLockedBridge, now); err != nil {
				return err
			}
			postings = []ledger.Posting{
				{Account: r.Sender, Bucket: ledger.BucketLiquid, Delta: -r.AmountUnits},
				{Account: escrow, Bucket: ledger.BucketLockedBridge, Delta: r.AmountUnits},
			}
			typ, step = events.TypeBridgeLocked, "lock"
		} else {
			w := ledger.WrappedBucket(r.PeerFrame)
			if err := s.ensureSystemAccount(ctx, tx, ledger.AccountIssuance, w, now); err != nil {
				return err
			}
			postings = []ledger.Posting{
				{Account: r.Sender, Bucket: w, Delta: -r.AmountUnits},
				{Account: ledger.AccountIssuance, Bucket: w, Delta: r.AmountUnits},
			}
			typ, step = events.TypeWrappedBurned, "burn"
		}
		kind := "transfer"
		if r.Kind == BridgeRedeem {
			kind = OpBurn
		}
		if err := s.bridgeMove(ctx, tx, kind, postings, now); err != nil {
			return err
		}
		// Under read committed a duplicate may have committed while this
		// transaction waited for the sender's row: the insert's unique key
		// turns that into a retry that finds it.
		if err := s.q.BridgeTransferInsert(ctx, tx, tegdb.BridgeTransferInsertParams{
			ID: id, Kind: r.Kind, PeerFrame: r.PeerFrame, Sender: r.Sender, Recipient: r.Recipient,
			AmountUnits: r.AmountUnits, ClientKey: r.ClientKey, ExpiresAt: now.Add(r.Window),
			WorkflowID: r.WorkflowID(id), Now: now,
		}); err != nil {
			return err
		}
		out = BridgeTransfer{ID: id, Kind: r.Kind, PeerFrame: r.PeerFrame, Sender: r.Sender, Recipient: r.Recipient,
			AmountUnits: r.AmountUnits, ClientKey: r.ClientKey, Status: BridgePending, ExpiresAt: now.Add(r.Window),
			WorkflowID: r.WorkflowID(id), CreatedAt: now, UpdatedAt: now}
		return s.bridgeEvent(ctx, tx, typ, id, step, r.Sender, postings, bridgePayload{
			TransferID: id, PeerFrame: r.PeerFrame, From: r.Sender, To: r.Recipient, AmountUnits: r.AmountUnits,
		}, now)
	})
	if err != nil && isUniqueViolation(err, "bridge_transfers_client_key") {
		if t, found, rerr := replay(s.pool); found || rerr != nil {
			return t, rerr
		}
	}
	return out, err
}

// GetBridgeTransfer returns bridge operation id (NotFound).
func (s *Store) GetBridgeTransfer(ctx context.Context, id uuid.UUID) (BridgeTransfer, error) {
	row, err := s.q.BridgeTransferGet(ctx, s.pool, id)
	if err != nil {
		return BridgeTransfer{}, db.NotFound(err, "bridge transfer %s not found", id)
	}
	return bridgeFromRow(row), nil
}

// BridgeComplete marks a pending operation completed: the peer applied it.
// Completing a completed one is a no-op; a refunded one is Conflict (it
// was refunded, so the peer must never have applied it).
func (s *Store) BridgeComplete(ctx context.Context, id uuid.UUID, feeUnits int64) (BridgeTransfer, error) {
	var out BridgeTransfer
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.BridgeTransferGetForUpdate(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "bridge transfer %s not found", id)
		}
		switch row.Status {
		case BridgeCompleted:
			out = bridgeFromRow(row)
			return nil
		case BridgeRefunded:
			return apperr.New(apperr.Conflict, "bridge transfer %s was refunded; it cannot complete", id)
		}
		now := s.clock()
		if err := s.q.BridgeTransferFinish(ctx, tx, tegdb.BridgeTransferFinishParams{ID: id, Status: BridgeCompleted, FeeUnits: max(feeUnits, 0), Now: now}); err != nil {
			return err
		}
		row.Status, row.FeeUnits, row.UpdatedAt = BridgeCompleted, max(feeUnits, 0), now
		out = bridgeFromRow(row)
		return nil
	})
	return out, err
}

// BridgeRefund undoes a pending operation's first leg because the peer
// did not and will not apply it: a send is unlocked back to the sender
// (BridgeUnlocked), a redeem's burn is re-minted to the holder
// (WrappedReminted). Refunding a refunded one is a no-op; a completed one
// is Conflict.
func (s *Store) BridgeRefund(ctx context.Context, id uuid.UUID, reason string) (BridgeTransfer, error) {
	if len(reason) > MaxReasonBytes {
		reason = truncate(reason, MaxReasonBytes)
	}
	var out BridgeTransfer
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.BridgeTransferGetForUpdate(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "bridge transfer %s not found", id)
		}
		switch row.Status {
		case BridgeRefunded:
			out = bridgeFromRow(row)
			return nil
		case BridgeCompleted:
			return apperr.New(apperr.Conflict, "bridge transfer %s completed; it cannot be refunded", id)
		}
		now := s.clock()
		var postings []ledger.Posting
		var typ, step, kind string
		if row.Kind == BridgeSend {
			postings = []ledger.Posting{
				{Account: ledger.BridgeEscrowAccount(row.PeerFrame), Bucket: ledger.BucketLockedBridge, Delta: -row.AmountUnits},
				{Account: row.Sender, Bucket: ledger.BucketLiquid, Delta: row.AmountUnits},
			}
			typ, step, kind = events.TypeBridgeUnlocked, "unlock", "transfer"
		} else {
			w := ledger.WrappedBucket(row.PeerFrame)
			postings = []ledger.Posting{
				{Account: ledger.AccountIssuance, Bucket: w, Delta: -row.AmountUnits},
				{Account: row.Sender, Bucket: w, Delta: row.AmountUnits},
			}
			typ, step, kind = events.TypeWrappedReminted, "remint", OpMint
		}
		if err := s.bridgeMove(ctx, tx, kind, postings, now); err != nil {
			return err
		}
		if err := s.q.BridgeTransferFinish(ctx, tx, tegdb.BridgeTransferFinishParams{ID: id, Status: BridgeRefunded, Reason: reason, Now: now}); err != nil {
			return err
		}
		row.Status, row.Reason, row.UpdatedAt = BridgeRefunded, reason, now
		out = bridgeFromRow(row)
		return s.bridgeEvent(ctx, tx, typ, id, step, row.Sender, postings, bridgePayload{
			TransferID: id, PeerFrame: row.PeerFrame, From: row.Sender, To: row.Recipient, AmountUnits: row.AmountUnits, Reason: reason,
		}, now)
	})
	return out, err
}

// BridgeInbound is an operation a peer frame asks this TEG to apply. The
// peer frame comes from the caller's verified identity, never the body.
type BridgeInbound struct {
	ID          uuid.UUID
	Kind        string // BridgeMint or BridgeRelease
	PeerFrame   string
	Recipient   string
	AmountUnits int64
	ExpiresAt   time.Time
}

// BridgeInboundResult is the answer to a peer.
type BridgeInboundResult struct {
	Status   string // BridgeApplied, BridgeRejected or BridgeFenced
	Reason   string
	FeeUnits int64
	err      error // why an item of a batch was refused as invalid
}

// BridgeApply applies in exactly once, keyed by its ID. A mint credits
// wrapped:<peer> to the recipient (amount − 0.5 %, the fee to this
// TEG's fee_collector in the same bucket) against issuance (WrappedMinted);
// a release moves amount from bridge:<peer>'s escrow to the recipient
// (BridgeReleased). An operation past its expiry, for an unknown
// recipient or beyond the escrow is refused and fenced: a later delivery
// of the same ID is refused too. A repeat of an applied or fenced ID gets
// the same answer; the same ID with other terms is Conflict.
func (s *Store) BridgeApply(ctx context.Context, in BridgeInbound) (BridgeInboundResult, error) {
	if err := in.validate(); err != nil {
		return BridgeInboundResult{}, err
	}
	res, err := s.BridgeApplyBatch(ctx, []BridgeInbound{in})
	if err != nil {
		return BridgeInboundResult{}, err
	}
	if res[0].err != nil {
		return BridgeInboundResult{}, res[0].err
	}
	return res[0], nil
}

func (in BridgeInbound) validate() error {
	if in.ID == uuid.Nil {
		return apperr.New(apperr.Invalid, "bridge operation id is required")
	}
	if in.Kind != BridgeMint && in.Kind != BridgeRelease {
		return apperr.New(apperr.Invalid, "bridge operation must be mint or release")
	}
	if !bridgeFrameID.MatchString(in.PeerFrame) {
		return apperr.New(apperr.Invalid, "frame %q is not a frame id", clip(in.PeerFrame))
	}
	if err := userAccount("to", in.Recipient); err != nil {
		return err
	}
	if err := ledger.ValidateAmount(in.AmountUnits); err != nil {
		return apperr.New(apperr.Invalid, "%s", err.Error())
	}
	return nil
}

// MaxBridgeBatch bounds one BridgeApplyBatch.
const MaxBridgeBatch = 1000

// BridgeApplyBatch applies ins as BridgeApply does each, in one
// transaction: the escrow, issuance and fee rows are locked once for the
// batch. Answers are in the order of ins; an invalid item or one recorded
// with other terms is answered Rejected (with its error's message) without
// touching the others.
func (s *Store) BridgeApplyBatch(ctx context.Context, ins []BridgeInbound) ([]BridgeInboundResult, error) {
	if len(ins) == 0 || len(ins) > MaxBridgeBatch {
		return nil, apperr.New(apperr.Invalid, "a bridge batch holds 1..%d operations", MaxBridgeBatch)
	}
	if !s.mainframe {
		return nil, apperr.New(apperr.FailedPrecondition, "only the frame's mainframe TEG bridges to other frames")
	}
	var out []BridgeInboundResult
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		out = make([]BridgeInboundResult, len(ins))
		now := s.clock()
		var moves []bridgeEntry
		var evs []bridgeEv
		escrowLeft := map[string]int64{}
		type item struct {
			i        int
			fee, net int64
		}
		var valid []item
		ip := tegdb.BridgeInboundInsertManyParams{Now: now}
		queued := map[uuid.UUID]bool{}
		for i, in := range ins {
			if err := in.validate(); err != nil {
				out[i] = BridgeInboundResult{Status: BridgeRejected, Reason: apperr.MessageOf(err), err: err}
				continue
			}
			fee, net := int64(0), in.AmountUnits
			if in.Kind == BridgeMint {
				if f, err := ledger.TransferFee(in.AmountUnits, ledger.BaseFeeBps); err == nil {
					fee, net = f.FeeUnits, f.NetUnits
				}
			}
			valid = append(valid, item{i: i, fee: fee, net: net})
			if queued[in.ID] {
				continue // the row is written with its first copy's terms
			}
			queued[in.ID] = true
			ip.Ids, ip.Kinds, ip.PeerFrames = append(ip.Ids, in.ID), append(ip.Kinds, in.Kind), append(ip.PeerFrames, in.PeerFrame)
			ip.Recipients, ip.Amounts, ip.Fees = append(ip.Recipients, in.Recipient), append(ip.Amounts, in.AmountUnits), append(ip.Fees, fee)
		}
		// The rows first, in one statement (in ID order): a concurrent
		// duplicate waits on its key and then finds it. Every round trip
		// here is paid once per batch, not per operation.
		fresh := map[uuid.UUID]bool{}
		if len(valid) > 0 {
			ids, err := s.q.BridgeInboundInsertMany(ctx, tx, ip)
			if err != nil {
				return err
			}
			for _, id := range ids {
				fresh[id] = true
			}
		}
		var recipients []string
		for _, it := range valid {
			if fresh[ins[it.i].ID] {
				recipients = append(recipients, ins[it.i].Recipient)
			}
		}
		exists := map[string]bool{}
		if len(recipients) > 0 {
			have, err := s.q.BridgeAccountsExisting(ctx, tx, recipients)
			if err != nil {
				return err
			}
			for _, a := range have {
				exists[a] = true
			}
		}
		for _, it := range valid {
			i, in, fee, net := it.i, ins[it.i], it.fee, it.net
			if !fresh[in.ID] {
				prev, _, err := s.bridgeInboundSeen(ctx, tx, in)
				if err != nil && !apperr.Is(err, apperr.Conflict) {
					return err
				}
				if err != nil {
					prev = BridgeInboundResult{Status: BridgeRejected, Reason: apperr.MessageOf(err), err: err}
				}
				out[i] = prev
				continue
			}
			// A second copy of the ID in this batch finds the first's row.
			delete(fresh, in.ID)
			refuse := func(reason string) error {
				out[i] = BridgeInboundResult{Status: BridgeRejected, Reason: reason}
				return s.q.BridgeInboundFence(ctx, tx, tegdb.BridgeInboundFenceParams{ID: in.ID, Reason: truncate(reason, 500)})
			}
			if now.After(in.ExpiresAt) {
				if err := refuse("expired before it arrived"); err != nil {
					return err
				}
				continue
			}
			if in.Kind == BridgeMint && net == in.AmountUnits {
				if err := refuse(ledger.ErrAmountTooSmall.Error()); err != nil {
					return err
				}
				continue
			}
			if !exists[in.Recipient] {
				if err := refuse(fmt.Sprintf("account %s does not exist on this frame", in.Recipient)); err != nil {
					return err
				}
				continue
			}
			var postings []ledger.Posting
			var typ, step, kind string
			if in.Kind == BridgeMint {
				w := ledger.WrappedBucket(in.PeerFrame)
				postings = []ledger.Posting{
					{Account: ledger.AccountIssuance, Bucket: w, Delta: -in.AmountUnits},
					{Account: in.Recipient, Bucket: w, Delta: net},
					{Account: ledger.AccountFeeCollector, Bucket: w, Delta: fee},
				}
				typ, step, kind = events.TypeWrappedMinted, "mint", OpMint
			} else {
				escrow := ledger.BridgeEscrowAccount(in.PeerFrame)
				left, ok := escrowLeft[escrow]
				if !ok {
					var err error
					if left, err = s.q.BridgeBalance(ctx, tx, tegdb.BridgeBalanceParams{AccountID: escrow, Bucket: ledger.BucketLockedBridge}); err != nil {
						return err
					}
				}
				if left < in.AmountUnits {
					escrowLeft[escrow] = left
					if err := refuse(fmt.Sprintf("the escrow for frame %s holds %s, the release needs %s",
						in.PeerFrame, money.Format(left), money.Format(in.AmountUnits))); err != nil {
						return err
					}
					continue
				}
				escrowLeft[escrow] = left - in.AmountUnits
				postings = []ledger.Posting{
					{Account: escrow, Bucket: ledger.BucketLockedBridge, Delta: -in.AmountUnits},
					{Account: in.Recipient, Bucket: ledger.BucketLiquid, Delta: in.AmountUnits},
				}
				typ, step, kind = events.TypeBridgeReleased, "release", "transfer"
			}
			moves = append(moves, bridgeEntry{kind: kind, postings: postings})
			evs = append(evs, bridgeEv{typ: typ, id: in.ID, step: step, subject: in.Recipient, postings: postings,
				p: bridgePayload{TransferID: in.ID, PeerFrame: in.PeerFrame, To: in.Recipient, AmountUnits: in.AmountUnits, FeeUnits: fee}})
			out[i] = BridgeInboundResult{Status: BridgeApplied, FeeUnits: fee}
		}
		if len(moves) == 0 {
			return nil
		}
		ensured := map[string]bool{}
		for _, in := range ins {
			if in.Kind == BridgeMint && bridgeFrameID.MatchString(in.PeerFrame) && !ensured[in.PeerFrame] {
				ensured[in.PeerFrame] = true
				if err := s.ensureSystemAccount(ctx, tx, ledger.AccountIssuance, ledger.WrappedBucket(in.PeerFrame), now); err != nil {
					return err
				}
			}
		}
		if err := s.bridgeMoves(ctx, tx, moves, now); err != nil {
			return err
		}
		envs := make([]events.Envelope, 0, len(evs))
		for _, e := range evs {
			env, err := newEvent(e.typ, "bridge-"+e.id.String()+"-"+e.step, e.subject, now, e.postings, e.p)
			if err != nil {
				return err
			}
			envs = append(envs, env)
		}
		return s.outbox.WriteBatch(ctx, tx, envs)
	})
	return out, err
}

type bridgeEntry struct {
	kind     string
	postings []ledger.Posting
}

type bridgeEv struct {
	typ, step, subject string
	id                 uuid.UUID
	postings           []ledger.Posting
	p                  bridgePayload
}

// bridgeInboundSeen answers a repeat of in from its row.
func (s *Store) bridgeInboundSeen(ctx context.Context, tx pgx.Tx, in BridgeInbound) (BridgeInboundResult, bool, error) {
	row, err := s.q.BridgeInboundGet(ctx, tx, in.ID)
	if db.IsNotFound(err) {
		return BridgeInboundResult{}, false, nil
	}
	if err != nil {
		return BridgeInboundResult{}, false, err
	}
	if row.Kind != in.Kind || row.PeerFrame != in.PeerFrame {
		return BridgeInboundResult{}, true, apperr.New(apperr.Conflict, "bridge operation %s was recorded with other terms", in.ID)
	}
	// A fence written by a question carries no terms: any delivery of
	// that ID is refused.
	if row.Status == BridgeFenced && row.Recipient == fenceRecipient {
		return BridgeInboundResult{Status: BridgeFenced, Reason: "refused earlier"}, true, nil
	}
	if row.Recipient != in.Recipient || row.AmountUnits != in.AmountUnits {
		return BridgeInboundResult{}, true, apperr.New(apperr.Conflict, "bridge operation %s was recorded with other terms", in.ID)
	}
	if row.Status == BridgeApplied {
		return BridgeInboundResult{Status: BridgeApplied, FeeUnits: row.FeeUnits}, true, nil
	}
	reason := "refused earlier"
	if row.Reason != "" {
		reason += ": " + row.Reason
	}
	return BridgeInboundResult{Status: BridgeFenced, Reason: reason}, true, nil
}

// BridgeInboundStatus answers a peer asking whether this TEG applied
// operation id of kind for it. An ID never seen is fenced first, so the
// answer "not applied" stays true: a delivery still on its way is refused.
func (s *Store) BridgeInboundStatus(ctx context.Context, peerFrame, kind string, id uuid.UUID) (string, error) {
	if kind != BridgeMint && kind != BridgeRelease {
		return "", apperr.New(apperr.Invalid, "bridge operation must be mint or release")
	}
	var status string
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := s.q.BridgeInboundInsert(ctx, tx, tegdb.BridgeInboundInsertParams{
			ID: id, Kind: kind, PeerFrame: peerFrame, Recipient: fenceRecipient, Status: BridgeFenced, Now: s.clock(),
		}); err != nil {
			return err
		}
		row, err := s.q.BridgeInboundGet(ctx, tx, id)
		if err != nil {
			return err
		}
		if row.Kind != kind || row.PeerFrame != peerFrame {
			return apperr.New(apperr.Conflict, "bridge operation %s belongs to another frame or kind", id)
		}
		status = row.Status
		return nil
	})
	return status, err
}

// BridgePosition is this TEG's side of the bridge with one peer frame.
type BridgePosition struct {
	// EscrowUnits: native value locked for the peer (bridge:<peer> locked_bridge).
	EscrowUnits int64
	// WrappedUnits: the peer's wrapped tokens outstanding here (−issuance in wrapped:<peer>).
	WrappedUnits int64
	// Pending are this TEG's unfinished operations with the peer.
	Pending []BridgePendingOp
}

// BridgePendingOp is one unfinished operation.
type BridgePendingOp struct {
	ID          uuid.UUID
	Kind        string
	AmountUnits int64
}

// BridgePosition reads escrow, wrapped supply and pending operations with
// peerFrame in one snapshot.
func (s *Store) BridgePosition(ctx context.Context, peerFrame string) (BridgePosition, error) {
	var out BridgePosition
	err := s.db.TxOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if out.EscrowUnits, err = s.q.BridgeBalance(ctx, tx, tegdb.BridgeBalanceParams{AccountID: ledger.BridgeEscrowAccount(peerFrame), Bucket: ledger.BucketLockedBridge}); err != nil {
			return err
		}
		iss, err := s.q.BridgeBalance(ctx, tx, tegdb.BridgeBalanceParams{AccountID: ledger.AccountIssuance, Bucket: ledger.WrappedBucket(peerFrame)})
		if err != nil {
			return err
		}
		out.WrappedUnits = -iss
		rows, err := s.q.BridgeTransfersPending(ctx, tx, peerFrame)
		if err != nil {
			return err
		}
		for _, r := range rows {
			out.Pending = append(out.Pending, BridgePendingOp{ID: r.ID, Kind: r.Kind, AmountUnits: r.AmountUnits})
		}
		return nil
	})
	return out, err
}

// BridgeInboundApplied returns which of ids this TEG applied for peerFrame.
func (s *Store) BridgeInboundApplied(ctx context.Context, peerFrame, kind string, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.q.BridgeInboundApplied(ctx, s.pool, tegdb.BridgeInboundAppliedParams{PeerFrame: peerFrame, Kind: kind, Ids: ids})
	for _, id := range rows {
		out[id] = true
	}
	return out, err
}

// StaleBridgeTransfers lists pending operations created before before.
func (s *Store) StaleBridgeTransfers(ctx context.Context, before time.Time, limit int) ([]BridgeTransfer, error) {
	rows, err := s.q.BridgeTransfersStale(ctx, s.pool, tegdb.BridgeTransfersStaleParams{Before: before, MaxRows: int32(limit)})
	out := make([]BridgeTransfer, 0, len(rows))
	for _, r := range rows {
		out = append(out, BridgeTransfer{ID: r.ID, Kind: r.Kind, WorkflowID: r.WorkflowID})
	}
	return out, err
}

// ensureSystemAccount creates a system account and its bucket row when
// missing.
func (s *Store) ensureSystemAccount(ctx context.Context, tx pgx.Tx, account, bucket string, now time.Time) error {
	if _, err := s.q.AccountInsert(ctx, tx, tegdb.AccountInsertParams{ID: account, Kind: string(ledger.KindSystem), Now: now}); err != nil {
		return err
	}
	return s.q.BalanceEnsure(ctx, tx, tegdb.BalanceEnsureParams{AccountID: account, Bucket: bucket, Now: now})
}

// bridgeMove applies one journal entry's postings (see bridgeMoves).
func (s *Store) bridgeMove(ctx context.Context, tx pgx.Tx, kind string, postings []ledger.Posting, now time.Time) error {
	return s.bridgeMoves(ctx, tx, []bridgeEntry{{kind: kind, postings: postings}}, now)
}

// bridgeMoves applies journal entries: their postings are netted per
// balance row, debited rows are locked in the global order and checked
// (available for liquid, units elsewhere) after every entry, credited rows
// are created when missing; fee_collector is only ever credited and goes
// last, as everywhere in the ledger. Each entry is its own journal entry.
func (s *Store) bridgeMoves(ctx context.Context, tx pgx.Tx, entries []bridgeEntry, now time.Time) error {
	keys := map[balKey]struct{}{}
	fees := map[string]int64{} // fee_collector credits per bucket
	ensured := map[balKey]bool{}
	var ensure, ensureFees []balKey
	for _, e := range entries {
		if err := ledger.ValidatePostings(e.postings); err != nil {
			return apperr.Wrap(err, apperr.Internal, "unbalanced bridge entry")
		}
		for _, p := range e.postings {
			k := balKey{p.Account, p.Bucket}
			if (p.Delta > 0 || p.Account == ledger.AccountFeeCollector) && !ensured[k] {
				ensured[k] = true
				if p.Account == ledger.AccountFeeCollector {
					ensureFees = append(ensureFees, k)
				} else {
					ensure = append(ensure, k)
				}
			}
			if p.Account == ledger.AccountFeeCollector {
				if p.Delta < 0 {
					return apperr.New(apperr.Internal, "a bridge entry may only credit fee_collector")
				}
				fees[p.Bucket] += p.Delta
				continue
			}
			keys[k] = struct{}{}
		}
	}
	// Missing credited rows are created in one statement, in the global
	// lock order with fee_collector last.
	sortBalKeys(ensure)
	sortBalKeys(ensureFees)
	if ensure = append(ensure, ensureFees...); len(ensure) > 0 {
		ep := tegdb.BridgeBalancesEnsureParams{Now: now}
		for _, k := range ensure {
			ep.AccountIds, ep.Buckets = append(ep.AccountIds, k.account), append(ep.Buckets, k.bucket)
		}
		if err := s.q.BridgeBalancesEnsure(ctx, tx, ep); err != nil {
			return mapConstraint(err)
		}
	}
	locked, err := s.lockBalances(ctx, tx, keys)
	if err != nil {
		return err
	}
	for _, e := range entries {
		for _, p := range e.postings {
			if p.Account == ledger.AccountFeeCollector {
				continue
			}
			b := locked[balKey{p.Account, p.Bucket}]
			if b == nil {
				return apperr.New(apperr.NotFound, "account %q has no %s balance", p.Account, p.Bucket)
			}
			if b.newUnits, err = money.Add(b.newUnits, p.Delta); err != nil {
				return apperr.New(apperr.Invalid, "the balance of %s would overflow", p.Account)
			}
			if p.Delta < 0 && !ledger.MayGoNegative(p.Account) && b.available() < 0 {
				return apperr.New(apperr.InsufficientFunds, "available %s balance of %s is %s, the bridge needs %s",
					p.Bucket, p.Account, money.Format(b.available()-p.Delta), money.Format(-p.Delta))
			}
		}
	}
	if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
		return err
	}
	if len(fees) > 0 {
		fp := tegdb.BalancesApplyParams{Now: now}
		buckets := make([]string, 0, len(fees))
		for bucket := range fees {
			buckets = append(buckets, bucket)
		}
		slices.Sort(buckets) // one row order for every batch
		for _, bucket := range buckets {
			units := fees[bucket]
			if units == 0 {
				continue
			}
			fp.AccountIds = append(fp.AccountIds, ledger.AccountFeeCollector)
			fp.Buckets = append(fp.Buckets, bucket)
			fp.Deltas = append(fp.Deltas, units)
			fp.HeldDeltas = append(fp.HeldDeltas, 0)
		}
		if len(fp.AccountIds) > 0 {
			n, err := s.q.BalancesApply(ctx, tx, fp)
			if err != nil {
				return mapConstraint(err)
			}
			if n != int64(len(fp.AccountIds)) {
				return fmt.Errorf("ledgerstore: fee credit touched %d rows", n)
			}
		}
	}
	return s.journalMany(ctx, tx, entries, now)
}

// journalMany writes every entry as its own journal entry, in one
// statement.
func (s *Store) journalMany(ctx context.Context, tx pgx.Tx, entries []bridgeEntry, now time.Time) error {
	jp := tegdb.BridgeJournalInsertManyParams{Now: now}
	for n, e := range entries {
		id, err := newID()
		if err != nil {
			return err
		}
		jp.EntryIds, jp.EntryKinds = append(jp.EntryIds, id), append(jp.EntryKinds, e.kind)
		for _, p := range e.postings {
			jp.PostingEntries = append(jp.PostingEntries, int64(n+1))
			jp.PostingAccounts, jp.PostingBuckets, jp.PostingDeltas = append(jp.PostingAccounts, p.Account), append(jp.PostingBuckets, p.Bucket), append(jp.PostingDeltas, p.Delta)
		}
	}
	return mapConstraint(s.q.BridgeJournalInsertMany(ctx, tx, jp))
}

func (s *Store) bridgeEvent(ctx context.Context, tx pgx.Tx, typ string, id uuid.UUID, step, subject string, postings []ledger.Posting, p bridgePayload, now time.Time) error {
	env, err := newEvent(typ, "bridge-"+id.String()+"-"+step, subject, now, slices.Clone(postings), p)
	if err != nil {
		return err
	}
	return s.outbox.Write(ctx, tx, env)
}

// BridgeTransfers returns the operations of ids that exist.
func (s *Store) BridgeTransfers(ctx context.Context, ids []uuid.UUID) ([]BridgeTransfer, error) {
	rows, err := s.q.BridgeTransfersByIDs(ctx, s.pool, ids)
	out := make([]BridgeTransfer, 0, len(rows))
	for _, r := range rows {
		out = append(out, bridgeFromRow(r))
	}
	return out, err
}

// BridgeCompleteMany marks pending operations completed (fee per ID), in
// one statement; operations not pending are left as they are.
func (s *Store) BridgeCompleteMany(ctx context.Context, fees map[uuid.UUID]int64) error {
	if len(fees) == 0 {
		return nil
	}
	p := tegdb.BridgeTransfersCompleteParams{Now: s.clock()}
	for id, fee := range fees {
		p.Ids = append(p.Ids, id)
		p.Fees = append(p.Fees, max(fee, 0))
	}
	return s.db.Tx(ctx, func(tx pgx.Tx) error { return s.q.BridgeTransfersComplete(ctx, tx, p) })
}

// BridgeStarted is one answer of BridgeStartMany.
type BridgeStarted struct {
	Transfer BridgeTransfer
	Err      error
}

// BridgeStartMany is BridgeStart for several requests in one transaction
// (the escrow and issuance rows locked once for all of them); each request
// is answered on its own, in order. Should the shared transaction fail,
// every request not yet answered is run alone.
func (s *Store) BridgeStartMany(ctx context.Context, rs []BridgeRequest) []BridgeStarted {
	out := make([]BridgeStarted, len(rs))
	type item struct {
		i        int
		id       uuid.UUID
		postings []ledger.Posting
		kind     string
		typ      string
		step     string
	}
	var live []item
	seen := map[[2]string]bool{}
	var later []int // a second request with the same key in the batch
	for i, r := range rs {
		if err := r.validate(); err != nil {
			out[i].Err = err
			continue
		}
		if !s.mainframe {
			out[i].Err = apperr.New(apperr.FailedPrecondition, "only the frame's mainframe TEG bridges to other frames")
			continue
		}
		k := [2]string{r.Sender, r.ClientKey}
		if seen[k] {
			later = append(later, i)
			continue
		}
		seen[k] = true
		id, err := newID()
		if err != nil {
			out[i].Err = err
			continue
		}
		live = append(live, item{i: i, id: id})
	}
	if len(live) > 0 {
		now := s.clock()
		var done []item
		err := s.db.Tx(ctx, func(tx pgx.Tx) error {
			done = done[:0]
			keys := map[balKey]struct{}{}
			ensured := map[balKey]bool{}
			for _, it := range live {
				r := rs[it.i]
				var credit balKey
				if r.Kind == BridgeSend {
					credit = balKey{ledger.BridgeEscrowAccount(r.PeerFrame), ledger.BucketLockedBridge}
					keys[balKey{r.Sender, ledger.BucketLiquid}] = struct{}{}
				} else {
					credit = balKey{ledger.AccountIssuance, ledger.WrappedBucket(r.PeerFrame)}
					keys[balKey{r.Sender, credit.bucket}] = struct{}{}
				}
				keys[credit] = struct{}{}
				if !ensured[credit] {
					ensured[credit] = true
					if err := s.ensureSystemAccount(ctx, tx, credit.account, credit.bucket, now); err != nil {
						return err
					}
				}
			}
			locked, err := s.lockBalances(ctx, tx, keys)
			if err != nil {
				return err
			}
			for _, it := range live {
				r := rs[it.i]
				var debit, credit balKey
				if r.Kind == BridgeSend {
					debit, credit = balKey{r.Sender, ledger.BucketLiquid}, balKey{ledger.BridgeEscrowAccount(r.PeerFrame), ledger.BucketLockedBridge}
					it.kind, it.typ, it.step = "transfer", events.TypeBridgeLocked, "lock"
				} else {
					w := ledger.WrappedBucket(r.PeerFrame)
					debit, credit = balKey{r.Sender, w}, balKey{ledger.AccountIssuance, w}
					it.kind, it.typ, it.step = OpBurn, events.TypeWrappedBurned, "burn"
				}
				d, c := locked[debit], locked[credit]
				switch {
				case d == nil:
					out[it.i].Err = apperr.New(apperr.NotFound, "account %q has no %s balance", r.Sender, debit.bucket)
					continue
				case d.available() < r.AmountUnits:
					out[it.i].Err = apperr.New(apperr.InsufficientFunds, "available %s balance of %s is %s, the bridge needs %s",
						debit.bucket, r.Sender, money.Format(d.available()), money.Format(r.AmountUnits))
					continue
				case c == nil:
					return fmt.Errorf("ledgerstore: bridge row %s/%s missing", credit.account, credit.bucket)
				}
				nc, err := money.Add(c.newUnits, r.AmountUnits)
				if err != nil {
					out[it.i].Err = apperr.New(apperr.Invalid, "the balance of %s would overflow", credit.account)
					continue
				}
				d.newUnits -= r.AmountUnits
				c.newUnits = nc
				out[it.i].Err = nil
				it.postings = []ledger.Posting{
					{Account: debit.account, Bucket: debit.bucket, Delta: -r.AmountUnits},
					{Account: credit.account, Bucket: credit.bucket, Delta: r.AmountUnits},
				}
				done = append(done, it)
			}
			if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
				return err
			}
			if len(done) == 0 {
				return nil
			}
			// The journal entries and the transfer rows are written a
			// statement each for the whole batch: every batch holds the
			// escrow row's lock until it commits.
			entries := make([]bridgeEntry, len(done))
			tp := tegdb.BridgeTransferInsertManyParams{Now: now}
			for n, it := range done {
				r := rs[it.i]
				if err := ledger.ValidatePostings(it.postings); err != nil {
					return apperr.Wrap(err, apperr.Internal, "unbalanced %s entry", it.kind)
				}
				entries[n] = bridgeEntry{kind: it.kind, postings: it.postings}
				tp.Ids, tp.Kinds, tp.PeerFrames = append(tp.Ids, it.id), append(tp.Kinds, r.Kind), append(tp.PeerFrames, r.PeerFrame)
				tp.Senders, tp.Recipients, tp.Amounts = append(tp.Senders, r.Sender), append(tp.Recipients, r.Recipient), append(tp.Amounts, r.AmountUnits)
				tp.ClientKeys, tp.Expires, tp.WorkflowIds = append(tp.ClientKeys, r.ClientKey), append(tp.Expires, now.Add(r.Window)), append(tp.WorkflowIds, r.WorkflowID(it.id))
			}
			if err := s.journalMany(ctx, tx, entries, now); err != nil {
				return err
			}
			if err := mapConstraint(s.q.BridgeTransferInsertMany(ctx, tx, tp)); err != nil {
				return err
			}
			envs := make([]events.Envelope, 0, len(done))
			for _, it := range done {
				r := rs[it.i]
				env, err := newEvent(it.typ, "bridge-"+it.id.String()+"-"+it.step, r.Sender, now, it.postings, bridgePayload{
					TransferID: it.id, PeerFrame: r.PeerFrame, From: r.Sender, To: r.Recipient, AmountUnits: r.AmountUnits,
				})
				if err != nil {
					return err
				}
				envs = append(envs, env)
			}
			return s.outbox.WriteBatch(ctx, tx, envs)
		})
		if err != nil {
			// A retry's duplicate key, or anything else: each alone.
			for _, it := range live {
				t, err := s.BridgeStart(ctx, rs[it.i])
				out[it.i] = BridgeStarted{Transfer: t, Err: err}
			}
		} else {
			for _, it := range done {
				r := rs[it.i]
				out[it.i].Transfer = BridgeTransfer{ID: it.id, Kind: r.Kind, PeerFrame: r.PeerFrame, Sender: r.Sender, Recipient: r.Recipient,
					AmountUnits: r.AmountUnits, ClientKey: r.ClientKey, Status: BridgePending, ExpiresAt: now.Add(r.Window),
					WorkflowID: r.WorkflowID(it.id), CreatedAt: now, UpdatedAt: now}
			}
		}
	}
	for _, i := range later {
		t, err := s.BridgeStart(ctx, rs[i])
		out[i] = BridgeStarted{Transfer: t, Err: err}
	}
	return out
}

// BridgePeerFrame is a peer frame as this mainframe last connected it.
type BridgePeerFrame struct {
	Frame       string
	TrustDomain string
	TEGID       string
	BaseURL     string
	Currency    string
}

// SaveBridgePeerFrame records (or replaces) a peer frame of the bridge
// directory, so a restart admits it before anything connects it again.
func (s *Store) SaveBridgePeerFrame(ctx context.Context, p BridgePeerFrame) error {
	if !bridgeFrameID.MatchString(p.Frame) {
		return apperr.New(apperr.Invalid, "frame must match %s", bridgeFrameID)
	}
	return s.q.BridgePeerFrameUpsert(ctx, s.pool, tegdb.BridgePeerFrameUpsertParams{
		Frame: p.Frame, TrustDomain: p.TrustDomain, TegID: p.TEGID, BaseUrl: p.BaseURL, Currency: p.Currency, Now: s.clock(),
	})
}

// BridgePeerFrames lists the recorded peer frames.
func (s *Store) BridgePeerFrames(ctx context.Context) ([]BridgePeerFrame, error) {
	rows, err := s.q.BridgePeerFrames(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	out := make([]BridgePeerFrame, len(rows))
	for i, r := range rows {
		out[i] = BridgePeerFrame{Frame: r.Frame, TrustDomain: r.TrustDomain, TEGID: r.TegID, BaseURL: r.BaseUrl, Currency: r.Currency}
	}
	return out, nil
}
