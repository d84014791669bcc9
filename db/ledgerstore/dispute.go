package ledgerstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/dispute"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
)

// Dispute events; each key derives from the dispute ID and the step.
const (
	EventDisputeOpened             = events.TypeDisputeOpened             // dispute-<id>-opened
	EventDisputeResponded          = events.TypeDisputeResponded          // dispute-<id>-responded
	EventDisputeResponseMissed     = events.TypeDisputeResponseMissed     // dispute-<id>-response-missed
	EventDisputeRuled              = events.TypeDisputeRuled              // dispute-<id>-ruled
	EventDisputeLapsed             = events.TypeDisputeLapsed             // dispute-<id>-lapsed
	EventDisputeCompensationMinted = events.TypeDisputeCompensationMinted // dispute-<id>-compensation
	EventDisputeFeeCharged         = events.TypeDisputeFeeCharged         // dispute-<id>-fee
)

// MaxDisputePage bounds a listing page.
const MaxDisputePage = 200

// Dispute is a dispute over a transfer recorded on this TEG.
type Dispute struct {
	ID           uuid.UUID
	TransferID   uuid.UUID
	Complainant  string
	Respondent   string
	ClaimedUnits int64
	EvidenceRef  string
	Status       dispute.Status
	RespondBy    time.Time
	RuleBy       time.Time
	FeeDueUnits  int64
	ResponseRef  string
	RespondedAt  *time.Time
	Defaulted    bool
	Outcome      dispute.Outcome // "" until ruled
	AwardUnits   int64
	RulingReason string
	RuledBy      string
	RuledAt      *time.Time
	// CompensationUnits and FeeUnits are what settling the ruling moved;
	// SettledAt is set once it did.
	CompensationUnits int64
	FeeUnits          int64
	SettledAt         *time.Time
	LapsedAt          *time.Time
	CreatedAt         time.Time
	Replayed          bool
}

// Winner and Loser of a ruled dispute ("" otherwise).
func (d Dispute) Winner() string {
	switch d.Outcome {
	case dispute.ForComplainant:
		return d.Complainant
	case dispute.ForRespondent:
		return d.Respondent
	}
	return ""
}

// Loser is the party the tribunal ruled against ("" unless ruled).
func (d Dispute) Loser() string {
	switch d.Outcome {
	case dispute.ForComplainant:
		return d.Respondent
	case dispute.ForRespondent:
		return d.Complainant
	}
	return ""
}

func disputeFromRow(r tegdb.Dispute) Dispute {
	d := Dispute{
		ID: r.ID, TransferID: r.TransferID, Complainant: r.Complainant, Respondent: r.Respondent, ClaimedUnits: r.ClaimedUnits,
		EvidenceRef: r.EvidenceRef, Status: dispute.Status(r.Status), RespondBy: r.RespondBy.UTC(), RuleBy: r.RuleBy.UTC(),
		FeeDueUnits: r.FeeDueUnits, RespondedAt: utcPtr(r.RespondedAt), Defaulted: r.Defaulted, AwardUnits: r.AwardUnits,
		RuledAt: utcPtr(r.RuledAt), CompensationUnits: r.CompensationUnits, FeeUnits: r.FeeUnits, SettledAt: utcPtr(r.SettledAt),
		LapsedAt: utcPtr(r.LapsedAt), CreatedAt: r.CreatedAt.UTC(),
	}
	if r.ResponseRef != nil {
		d.ResponseRef = *r.ResponseRef
	}
	if r.Outcome != nil {
		d.Outcome = dispute.Outcome(*r.Outcome)
	}
	if r.RulingReason != nil {
		d.RulingReason = *r.RulingReason
	}
	if r.RuledBy != nil {
		d.RuledBy = *r.RuledBy
	}
	return d
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (d Dispute) state() dispute.State {
	return dispute.State{DisputeID: d.ID.String(), Status: d.Status, Defaulted: d.Defaulted}
}

// disputePayload is the payload of every dispute event but DisputeRuled.
type disputePayload struct {
	DisputeID    string    `json:"dispute_id"`
	TransferID   string    `json:"transfer_id"`
	Complainant  string    `json:"complainant"`
	Respondent   string    `json:"respondent"`
	ClaimedUnits int64     `json:"claimed_units"`
	Status       string    `json:"status"`
	EvidenceRef  string    `json:"evidence_ref,omitempty"`
	ResponseRef  string    `json:"response_ref,omitempty"`
	RespondBy    time.Time `json:"respond_by"`
	RuleBy       time.Time `json:"rule_by"`
	AmountUnits  int64     `json:"amount_units,omitempty"` // compensation or fee moved
}

func (d Dispute) payload(amount int64) disputePayload {
	return disputePayload{DisputeID: d.ID.String(), TransferID: d.TransferID.String(), Complainant: d.Complainant, Respondent: d.Respondent,
		ClaimedUnits: d.ClaimedUnits, Status: string(d.Status), EvidenceRef: d.EvidenceRef, ResponseRef: d.ResponseRef,
		RespondBy: d.RespondBy, RuleBy: d.RuleBy, AmountUnits: amount}
}

func (s *Store) disputeEvent(ctx context.Context, tx pgx.Tx, typ, step, subject string, d Dispute, now time.Time, postings []ledger.Posting, payload any) error {
	env, err := newEvent(typ, "dispute-"+d.ID.String()+"-"+step, subject, now, postings, payload)
	if err != nil {
		return err
	}
	return s.outbox.Write(ctx, tx, env)
}

// OpenDisputeRequest is an agent's complaint about a transfer.
type OpenDisputeRequest struct {
	Complainant    string // the caller, an agent DID
	TransferID     uuid.UUID
	ClaimedUnits   int64
	EvidenceRef    string // a reference to the evidence (URL, hash), 1-500 bytes
	IdempotencyKey string
	Rules          dispute.Rules
}

// validateRef checks an evidence or response reference.
func validateRef(field, s string) error {
	if s == "" {
		return apperr.New(apperr.Invalid, "%s is required", field)
	}
	return validateText(field, s, dispute.MaxEvidenceRefBytes)
}

// OpenDispute records a dispute by a party of a transfer recorded on this
// TEG against the other party, with its deadlines and the fee due if the
// complainant loses fixed from req.Rules, and writes DisputeOpened, in one
// transaction. Disputes are heard where compensation can be minted: only
// the frame's mainframe TEG records them.
//
// Errors, with nothing written: Invalid (malformed input, claim above the
// transfer's amount), FailedPrecondition (not the mainframe; the dispute
// window of the transfer has closed; a cross-registry leg), NotFound (no such transfer here),
// Forbidden (the complainant was not a party to it), Conflict (the
// complainant already disputes it), IdempotencyReuse (the key was used
// for another dispute). A retry with the same key returns the recorded
// dispute (Replayed).
func (s *Store) OpenDispute(ctx context.Context, req OpenDisputeRequest) (Dispute, error) {
	if !s.mainframe {
		return Dispute{}, apperr.New(apperr.FailedPrecondition,
			"disputes are heard on the frame's mainframe registry; registry %s is not the mainframe", s.outbox.Registry)
	}
	if k, err := ledger.KindOf(req.Complainant); err != nil || k != ledger.KindAgent {
		return Dispute{}, apperr.New(apperr.Invalid, "complainant: only agents open disputes, not %q", req.Complainant)
	}
	if req.TransferID == uuid.Nil {
		return Dispute{}, apperr.New(apperr.Invalid, "transfer_id is required")
	}
	if err := validateClientKey(req.IdempotencyKey); err != nil {
		return Dispute{}, err
	}
	if err := validateRef("evidence_ref", req.EvidenceRef); err != nil {
		return Dispute{}, err
	}
	if err := ledger.ValidateAmount(req.ClaimedUnits); err != nil {
		return Dispute{}, apperr.New(apperr.Invalid, "claimed amount: %s", err.Error())
	}
	if err := req.Rules.Validate(); err != nil {
		return Dispute{}, apperr.Wrap(err, apperr.Internal, "dispute rules")
	}
	now := s.clock()
	var out Dispute
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		if r, err := s.q.DisputeByKey(ctx, tx, tegdb.DisputeByKeyParams{Complainant: req.Complainant, ClientKey: req.IdempotencyKey}); err == nil {
			if r.TransferID != req.TransferID || r.ClaimedUnits != req.ClaimedUnits || r.EvidenceRef != req.EvidenceRef {
				return apperr.New(apperr.IdempotencyReuse, "idempotency key %q was already used for another dispute", req.IdempotencyKey)
			}
			out = disputeFromRow(r)
			out.Replayed = true
			return nil
		} else if !db.IsNotFound(err) {
			return err
		}
		t, err := s.q.TransferGet(ctx, tx, req.TransferID)
		if err != nil {
			return db.NotFound(err, "transfer %s not found on this registry", req.TransferID)
		}
		if !userParties(t.Sender, t.Receiver) {
			return apperr.New(apperr.FailedPrecondition, "transfer %s is a leg of a cross-registry transfer; those cannot be disputed yet", req.TransferID)
		}
		respondent, dl, feeDue, err := req.Rules.CheckOpen(dispute.Opening{
			Complainant: req.Complainant, Sender: t.Sender, Receiver: t.Receiver, TransferUnits: t.AmountUnits,
			TransferAt: t.CreatedAt, ClaimedUnits: req.ClaimedUnits, Now: now,
		})
		switch {
		case errors.Is(err, dispute.ErrNotParty):
			return apperr.New(apperr.Forbidden, "%s was not a party to transfer %s", req.Complainant, req.TransferID)
		case errors.Is(err, dispute.ErrOverClaim):
			return apperr.New(apperr.Invalid, "the claim of %s exceeds the transfer's amount of %s", money.Format(req.ClaimedUnits), money.Format(t.AmountUnits))
		case errors.Is(err, dispute.ErrWindowClosed):
			return apperr.New(apperr.FailedPrecondition, "transfer %s can no longer be disputed: its window closed at %s",
				req.TransferID, t.CreatedAt.Add(req.Rules.OpenWindow).UTC().Format(time.RFC3339))
		case err != nil:
			return apperr.Wrap(err, apperr.Invalid, "dispute")
		}
		if _, err := s.q.DisputeByParty(ctx, tx, tegdb.DisputeByPartyParams{TransferID: t.ID, Complainant: req.Complainant}); err == nil {
			return apperr.New(apperr.Conflict, "%s already disputes transfer %s", req.Complainant, req.TransferID)
		} else if !db.IsNotFound(err) {
			return err
		}
		id, err := newID()
		if err != nil {
			return err
		}
		if err := s.q.DisputeInsert(ctx, tx, tegdb.DisputeInsertParams{
			ID: id, TransferID: t.ID, Complainant: req.Complainant, Respondent: respondent, ClaimedUnits: req.ClaimedUnits,
			EvidenceRef: req.EvidenceRef, ClientKey: req.IdempotencyKey, RespondBy: dl.RespondBy, RuleBy: dl.RuleBy,
			FeeDueUnits: feeDue, Now: now,
		}); err != nil {
			return err
		}
		out = Dispute{ID: id, TransferID: t.ID, Complainant: req.Complainant, Respondent: respondent, ClaimedUnits: req.ClaimedUnits,
			EvidenceRef: req.EvidenceRef, Status: dispute.AwaitingResponse, RespondBy: dl.RespondBy, RuleBy: dl.RuleBy,
			FeeDueUnits: feeDue, CreatedAt: now}
		return s.disputeEvent(ctx, tx, EventDisputeOpened, "opened", req.Complainant, out, now, nil, out.payload(0))
	})
	switch {
	case err != nil && isUniqueViolation(err, "disputes_client_key"):
		return s.OpenDispute(ctx, req) // a concurrent twin committed first: replay it
	case err != nil && isUniqueViolation(err, "disputes_once_per_party"):
		return Dispute{}, apperr.New(apperr.Conflict, "%s already disputes transfer %s", req.Complainant, req.TransferID)
	}
	return out, err
}

// userParties reports whether both parties are agents or developers (a
// cross-registry leg has a transit account on one side).
func userParties(ids ...string) bool {
	for _, id := range ids {
		if k, err := ledger.KindOf(id); err != nil || !ledger.IsUserKind(k) {
			return false
		}
	}
	return true
}

// GetDispute returns dispute id (NotFound).
func (s *Store) GetDispute(ctx context.Context, id uuid.UUID) (Dispute, error) {
	r, err := s.q.DisputeGet(ctx, s.pool, id)
	if err != nil {
		return Dispute{}, db.NotFound(err, "dispute %s not found", id)
	}
	return disputeFromRow(r), nil
}

// Disputes pages the disputes party is in (every dispute when party is
// ""), by id after the previous page's last id; limit is clamped to
// 1..MaxDisputePage (DefaultPageSize when ≤ 0).
func (s *Store) Disputes(ctx context.Context, party string, after uuid.UUID, limit int) ([]Dispute, error) {
	n := int32(DefaultPageSize)
	if limit > 0 {
		n = int32(min(limit, MaxDisputePage))
	}
	var rows []tegdb.Dispute
	var err error
	if party == "" {
		rows, err = s.q.DisputesAll(ctx, s.pool, tegdb.DisputesAllParams{AfterID: after, MaxRows: n})
	} else {
		rows, err = s.q.DisputesByParty(ctx, s.pool, tegdb.DisputesByPartyParams{Party: party, AfterID: after, MaxRows: n})
	}
	if err != nil {
		return nil, err
	}
	out := make([]Dispute, len(rows))
	for i, r := range rows {
		out[i] = disputeFromRow(r)
	}
	return out, nil
}

// lockDispute reads dispute id FOR UPDATE (NotFound).
func (s *Store) lockDispute(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Dispute, error) {
	r, err := s.q.DisputeLock(ctx, tx, id)
	if err != nil {
		return Dispute{}, db.NotFound(err, "dispute %s not found", id)
	}
	return disputeFromRow(r), nil
}

// RespondDispute records the respondent's answer and writes
// DisputeResponded. Errors: Invalid, NotFound (no such dispute, or the
// caller is not a party), Forbidden (the complainant cannot respond),
// FailedPrecondition (the response window has closed or the dispute was
// ruled), Conflict (already answered with another reference). Answering
// again with the same reference returns the dispute (Replayed).
func (s *Store) RespondDispute(ctx context.Context, id uuid.UUID, respondent, responseRef string) (Dispute, error) {
	if err := validateRef("response_ref", responseRef); err != nil {
		return Dispute{}, err
	}
	now := s.clock()
	var out Dispute
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		d, err := s.lockDispute(ctx, tx, id)
		if err != nil {
			return err
		}
		switch respondent {
		case d.Respondent:
		case d.Complainant:
			return apperr.New(apperr.Forbidden, "only the respondent answers dispute %s", id)
		default:
			return apperr.New(apperr.NotFound, "dispute %s not found", id)
		}
		if d.RespondedAt != nil {
			if d.ResponseRef != responseRef {
				return apperr.New(apperr.Conflict, "dispute %s was already answered", id)
			}
			out, out.Replayed = d, true
			return nil
		}
		if d.Status != dispute.AwaitingResponse || !now.Before(d.RespondBy) {
			return apperr.New(apperr.FailedPrecondition, "dispute %s no longer takes a response (status %s, response window closed at %s)",
				id, d.Status, d.RespondBy.Format(time.RFC3339))
		}
		if err := s.q.DisputeRespond(ctx, tx, tegdb.DisputeRespondParams{ID: id, ResponseRef: &responseRef, Now: now}); err != nil {
			return err
		}
		d.Status, d.ResponseRef, d.RespondedAt = dispute.AwaitingRuling, responseRef, &now
		out = d
		return s.disputeEvent(ctx, tx, EventDisputeResponded, "responded", respondent, d, now, nil, d.payload(0))
	})
	return out, err
}

// RulingRequest is the tribunal's decision.
type RulingRequest struct {
	DisputeID  uuid.UUID
	Outcome    dispute.Outcome
	AwardUnits int64 // for the complainant: 1..claimed (0: the claim); for the respondent: 0
	Reason     string
	Actor      string // the admin principal
}

// RuleDispute records the tribunal's ruling and writes DisputeRuled (its
// payload is events.DisputeRuledPayload), in one transaction; the
// consequences follow in SettleDispute, which the Dispute workflow runs.
// Errors: Invalid, NotFound, FailedPrecondition (the dispute lapsed or its
// ruling window closed), Conflict (it was ruled otherwise). The same
// ruling again returns the dispute (Replayed).
func (s *Store) RuleDispute(ctx context.Context, req RulingRequest) (Dispute, error) {
	if _, err := dispute.ParseOutcome(string(req.Outcome)); err != nil {
		return Dispute{}, apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if strings.TrimSpace(req.Reason) == "" {
		return Dispute{}, apperr.New(apperr.Invalid, "reason is required")
	}
	if err := validateText("reason", req.Reason, dispute.MaxReasonBytes); err != nil {
		return Dispute{}, err
	}
	if req.Actor == "" || len(req.Actor) > 200 {
		return Dispute{}, apperr.New(apperr.Invalid, "actor must be 1-200 bytes")
	}
	now := s.clock()
	var out Dispute
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		d, err := s.lockDispute(ctx, tx, req.DisputeID)
		if err != nil {
			return err
		}
		award, err := dispute.CheckAward(req.Outcome, req.AwardUnits, d.ClaimedUnits)
		if err != nil {
			return apperr.New(apperr.Invalid, "%s", err.Error())
		}
		if d.Status == dispute.Ruled {
			if d.Outcome != req.Outcome || d.AwardUnits != award {
				return apperr.New(apperr.Conflict, "dispute %s was already ruled for the %s", d.ID, d.Outcome)
			}
			out, out.Replayed = d, true
			return nil
		}
		if !d.Status.Open() || !now.Before(d.RuleBy) {
			return apperr.New(apperr.FailedPrecondition, "dispute %s can no longer be ruled (status %s, ruling window closed at %s)",
				d.ID, d.Status, d.RuleBy.Format(time.RFC3339))
		}
		outcome := string(req.Outcome)
		if err := s.q.DisputeRule(ctx, tx, tegdb.DisputeRuleParams{
			ID: d.ID, Outcome: &outcome, AwardUnits: award, Reason: &req.Reason, RuledBy: &req.Actor, Now: now,
		}); err != nil {
			return err
		}
		d.Status, d.Outcome, d.AwardUnits, d.RulingReason, d.RuledBy, d.RuledAt = dispute.Ruled, req.Outcome, award, req.Reason, req.Actor, &now
		out = d
		return s.disputeEvent(ctx, tx, EventDisputeRuled, "ruled", d.Loser(), d, now, nil, events.DisputeRuledPayload{
			DisputeID: d.ID.String(), TransferID: d.TransferID.String(), Complainant: d.Complainant, Respondent: d.Respondent,
			Winner: d.Winner(), Loser: d.Loser(), AmountUnits: d.ClaimedUnits, AwardUnits: award, Outcome: outcome, Reason: req.Reason,
		})
	})
	return out, err
}

// errNotDue is a deadline step run before its deadline (the workflow's
// timer and this clock disagree): retryable, it succeeds once due.
func errNotDue(what string, id uuid.UUID, at time.Time) error {
	return apperr.New(apperr.Unavailable, "the %s of dispute %s is not due until %s", what, id, at.Format(time.RFC3339Nano))
}

// CloseDisputeResponse applies the response deadline: a dispute still
// awaiting its response at respond_by goes to the tribunal with the
// respondent in default (DisputeResponseMissed). A dispute answered or
// ruled meanwhile is left as it is. Idempotent; returns the state.
// Unavailable (retry) before respond_by.
func (s *Store) CloseDisputeResponse(ctx context.Context, id uuid.UUID) (dispute.State, error) {
	now := s.clock()
	var out dispute.State
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		d, err := s.lockDispute(ctx, tx, id)
		if err != nil {
			return err
		}
		out = d.state()
		if d.Status != dispute.AwaitingResponse {
			return nil
		}
		if now.Before(d.RespondBy) {
			return errNotDue("response deadline", id, d.RespondBy)
		}
		if err := s.q.DisputeDefault(ctx, tx, id); err != nil {
			return err
		}
		d.Status, d.Defaulted = dispute.AwaitingRuling, true
		out = d.state()
		return s.disputeEvent(ctx, tx, EventDisputeResponseMissed, "response-missed", d.Respondent, d, now, nil, d.payload(0))
	})
	return out, err
}

// LapseDispute applies the ruling deadline: a dispute still unruled at
// rule_by lapses (DisputeLapsed) with no consequence for anyone. A ruled
// dispute is left as it is (the caller settles it). Idempotent; returns
// the state. Unavailable (retry) before rule_by.
func (s *Store) LapseDispute(ctx context.Context, id uuid.UUID) (dispute.State, error) {
	now := s.clock()
	var out dispute.State
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		d, err := s.lockDispute(ctx, tx, id)
		if err != nil {
			return err
		}
		out = d.state()
		if !d.Status.Open() {
			return nil
		}
		if now.Before(d.RuleBy) {
			return errNotDue("ruling deadline", id, d.RuleBy)
		}
		if err := s.q.DisputeLapse(ctx, tx, tegdb.DisputeLapseParams{ID: id, Now: now}); err != nil {
			return err
		}
		d.Status, d.LapsedAt = dispute.Lapsed, &now
		out = d.state()
		return s.disputeEvent(ctx, tx, EventDisputeLapsed, "lapsed", d.Complainant, d, now, nil, d.payload(0))
	})
	return out, err
}

// SettleDispute applies a ruling's consequences exactly once, in one
// transaction with their events: for the complainant, the award is minted
// to them (issuance −, complainant liquid +; DisputeCompensationMinted);
// for the respondent, the fee due moves from the complainant's available
// balance to the treasury (DisputeFeeCharged), capped by what is
// available. The slash of a losing respondent's stake is not done here:
// a reactor on DisputeRuled does it through the enforcement slash.
//
// Compensation is a mint: like Mint it waits for a clean supply audit
// (Unavailable while the audit is unreadable or not clean: retry).
// Errors: NotFound. A settled dispute returns what it moved (Replayed); a
// dispute not ruled moves nothing and returns its status.
func (s *Store) SettleDispute(ctx context.Context, id uuid.UUID) (dispute.Settlement, error) {
	d, err := s.GetDispute(ctx, id)
	if err != nil {
		return dispute.Settlement{}, err
	}
	if d.SettledAt != nil {
		return d.settlement(true), nil
	}
	if d.Status != dispute.Ruled {
		// Nothing to settle: the caller learns the status (a workflow
		// prompted by a signal without a ruling behind it waits on).
		return dispute.Settlement{DisputeID: id.String(), Status: d.Status}, nil
	}
	if d.Outcome == dispute.ForComplainant {
		v, err := s.gate.SupplyVerdict(ctx)
		if err != nil {
			return dispute.Settlement{}, apperr.Wrap(err, apperr.Unavailable, "supply audit unavailable; compensation waits")
		}
		if v.Delta != 0 || len(v.Failures) > 0 {
			return dispute.Settlement{}, apperr.New(apperr.Unavailable,
				"compensation waits: the frame's supply audit is not clean (delta %s, %d failures)", money.Format(v.Delta), len(v.Failures))
		}
	}
	now := s.clock()
	var out dispute.Settlement
	err = s.db.Tx(ctx, func(tx pgx.Tx) error {
		d, err := s.lockDispute(ctx, tx, id)
		if err != nil {
			return err
		}
		if d.SettledAt != nil {
			out = d.settlement(true)
			return nil
		}
		switch d.Outcome {
		case dispute.ForComplainant:
			d.CompensationUnits = d.AwardUnits
			err = s.mintCompensation(ctx, tx, d, now)
		case dispute.ForRespondent:
			d.FeeUnits, err = s.chargeDisputeFee(ctx, tx, d, now)
		default:
			err = apperr.New(apperr.Internal, "dispute %s is ruled without an outcome", id)
		}
		if err != nil {
			return err
		}
		if err := s.q.DisputeSettle(ctx, tx, tegdb.DisputeSettleParams{ID: id, CompensationUnits: d.CompensationUnits, FeeUnits: d.FeeUnits, Now: now}); err != nil {
			return mapConstraint(err)
		}
		d.SettledAt = &now
		out = d.settlement(false)
		return nil
	})
	return out, err
}

func (d Dispute) settlement(replayed bool) dispute.Settlement {
	return dispute.Settlement{DisputeID: d.ID.String(), Status: d.Status, Outcome: d.Outcome,
		CompensationUnits: d.CompensationUnits, FeeUnits: d.FeeUnits, Replayed: replayed}
}

// mintCompensation mints the award to the complainant. The journal entry
// is of kind mint (it is one); the event type tells the supply audit to
// count it under compensation_issued.
func (s *Store) mintCompensation(ctx context.Context, tx pgx.Tx, d Dispute, now time.Time) error {
	issuance, to := balKey{ledger.AccountIssuance, ledger.BucketLiquid}, balKey{d.Complainant, ledger.BucketLiquid}
	locked, err := s.lockBalances(ctx, tx, map[balKey]struct{}{issuance: {}, to: {}})
	if err != nil {
		return err
	}
	ib, cb := locked[issuance], locked[to]
	if ib == nil || cb == nil {
		return apperr.New(apperr.Internal, "balances for the compensation of dispute %s missing", d.ID)
	}
	if ib.newUnits, err = money.Sub(ib.newUnits, d.AwardUnits); err != nil {
		return apperr.New(apperr.Invalid, "compensation would overflow the supply")
	}
	if cb.newUnits, err = money.Add(cb.newUnits, d.AwardUnits); err != nil {
		return apperr.New(apperr.Invalid, "compensation would overflow the balance of %s", d.Complainant)
	}
	if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
		return err
	}
	postings := []ledger.Posting{
		{Account: ledger.AccountIssuance, Bucket: ledger.BucketLiquid, Delta: -d.AwardUnits},
		{Account: d.Complainant, Bucket: ledger.BucketLiquid, Delta: d.AwardUnits},
	}
	if err := s.journal(ctx, tx, OpMint, postings, now); err != nil {
		return err
	}
	return s.disputeEvent(ctx, tx, EventDisputeCompensationMinted, "compensation", d.Complainant, d, now, postings, d.payload(d.AwardUnits))
}

// chargeDisputeFee moves the fee due (capped by the complainant's
// available balance) to the treasury and returns what it charged. The
// journal entry is of kind transfer: a plain move between two accounts.
func (s *Store) chargeDisputeFee(ctx context.Context, tx pgx.Tx, d Dispute, now time.Time) (int64, error) {
	if d.FeeDueUnits == 0 {
		return 0, nil
	}
	from, treasury := balKey{d.Complainant, ledger.BucketLiquid}, balKey{ledger.AccountTreasury, ledger.BucketLiquid}
	locked, err := s.lockBalances(ctx, tx, map[balKey]struct{}{from: {}, treasury: {}})
	if err != nil {
		return 0, err
	}
	fb, tb := locked[from], locked[treasury]
	if fb == nil || tb == nil {
		return 0, apperr.New(apperr.Internal, "balances for the fee of dispute %s missing", d.ID)
	}
	fee := dispute.FeeCharged(d.FeeDueUnits, fb.available())
	if fee == 0 {
		return 0, nil
	}
	fb.newUnits -= fee
	fb.noteAvail()
	if tb.newUnits, err = money.Add(tb.newUnits, fee); err != nil {
		return 0, apperr.New(apperr.Invalid, "the fee would overflow the treasury")
	}
	if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
		return 0, err
	}
	postings := []ledger.Posting{
		{Account: d.Complainant, Bucket: ledger.BucketLiquid, Delta: -fee},
		{Account: ledger.AccountTreasury, Bucket: ledger.BucketLiquid, Delta: fee},
	}
	if err := s.journal(ctx, tx, "transfer", postings, now); err != nil {
		return 0, err
	}
	return fee, s.disputeEvent(ctx, tx, EventDisputeFeeCharged, "fee", d.Complainant, d, now, postings, d.payload(fee))
}
