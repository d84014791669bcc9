// Package paidcalls is the registry side of paid agent calls: a payer
// agent asks for a payment token, the registry reserves the maximum with a
// hold on the payer's TEG and signs a paytoken naming the payee; the payee
// serves the call and settles the token for the amount due (the hold is
// posted, the rest released) or releases it. A token settles at most once
// because its hold posts at most once; a token nobody settles dies with
// its hold, which the hold expiry sweep voids.
//
// Every step writes its own event (PaymentTokenIssued, PaymentSettled,
// PaymentReleased) in the transaction that moves the hold, so the event log
// shows each paid call next to the money it moved.
package paidcalls

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/paytoken"
)

// Token lifetime bounds: long enough for one call, short enough that a
// forgotten token's reservation comes back soon.
const (
	DefaultTTL = 5 * time.Minute
	MaxTTL     = time.Hour
	MinTTL     = 2 * time.Second
)

// Ledger is what paid calls need from the payer's TEG.
// *ledgerstore.Store implements it.
type Ledger interface {
	PlaceHoldWith(ctx context.Context, r ledgerstore.HoldRequest, extra ledgerstore.HoldEvents) (ledgerstore.Hold, error)
	PostHoldWith(ctx context.Context, id uuid.UUID, amountUnits int64, extra ledgerstore.HoldEvents) (ledgerstore.Hold, ledgerstore.Transfer, error)
	VoidHoldWith(ctx context.Context, id uuid.UUID, extra ledgerstore.HoldEvents) (ledgerstore.Hold, error)
}

var _ Ledger = (*ledgerstore.Store)(nil)

// Service issues, settles and releases payment tokens of one registry.
type Service struct {
	Ledger   Ledger
	Key      ed25519.PrivateKey // the registry's signing key (its JWKS key)
	Issuer   string             // the registry's issuer URI
	Registry string
	Frame    string
	Currency string
	Now      func() time.Time
	// Cross pays payees of other registries of the frame and forwards
	// the settlement of other registries' tokens (nil: payees must live
	// here and tokens be this registry's).
	Cross *Cross
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Keys verifies tokens this registry signed.
func (s *Service) Keys() paytoken.KeyFunc {
	return paytoken.StaticKeys(s.Issuer, s.Key.Public().(ed25519.PublicKey))
}

// IssueRequest asks for a token: Payer reserves up to MaxUnits for Payee.
type IssueRequest struct {
	Payer, Payee   string
	MaxUnits       int64
	TTL            time.Duration // 0: DefaultTTL
	Description    string
	IdempotencyKey string // the hold's, per payer
	// Record, when set, builds the API response's idempotency record from
	// the new token; it commits with the hold (ledgerstore.HoldStep).
	Record func(Issued) (*ledgerstore.StepRecord, error)
}

// Issued is a signed token with its claims and hold.
type Issued struct {
	Token  string
	Claims paytoken.Claims
	Hold   ledgerstore.Hold
}

type issuedPayload struct {
	HoldID        uuid.UUID `json:"hold_id"`
	Payer         string    `json:"payer"`
	Payee         string    `json:"payee"`
	MaxUnits      int64     `json:"max_units"`
	Currency      string    `json:"currency"`
	ExpiresAt     time.Time `json:"expires_at"`
	Nonce         string    `json:"nonce"`
	Description   string    `json:"description,omitempty"`
	PayeeRegistry string    `json:"payee_registry,omitempty"`
}

// settledPayload: for a payee on another registry, TransferID is the
// cross-registry transfer (pending when this is written; its legs'
// events follow) and FeeUnits/NetUnits are what the payee's registry
// charges and credits when it commits.
type settledPayload struct {
	HoldID        uuid.UUID `json:"hold_id"`
	Payer         string    `json:"payer"`
	Payee         string    `json:"payee"`
	MaxUnits      int64     `json:"max_units"`
	Units         int64     `json:"units"`
	FeeUnits      int64     `json:"fee_units"`
	NetUnits      int64     `json:"net_units"`
	TransferID    uuid.UUID `json:"transfer_id"`
	Nonce         string    `json:"nonce"`
	PayeeRegistry string    `json:"payee_registry,omitempty"`
}

type releasedPayload struct {
	HoldID uuid.UUID `json:"hold_id"`
	Payer  string    `json:"payer"`
	Payee  string    `json:"payee"`
	By     string    `json:"by"`
	Nonce  string    `json:"nonce"`
}

// Issue places the hold and signs the token. A replay of the idempotency
// key returns a fresh token (new nonce) for the original hold; that hold
// still settles once. Errors: Invalid, NotFound (payee not on this
// registry's TEG), InsufficientFunds, IdempotencyReuse.
func (s *Service) Issue(ctx context.Context, r IssueRequest) (Issued, error) {
	ttl := r.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < MinTTL || ttl > MaxTTL {
		return Issued{}, apperr.New(apperr.Invalid, "expiry must be %s..%s ahead", MinTTL, MaxTTL)
	}
	if r.MaxUnits <= 0 {
		return Issued{}, apperr.New(apperr.Invalid, "the maximum amount must be positive")
	}
	nonce, err := paytoken.NewNonce()
	if err != nil {
		return Issued{}, err
	}
	now := s.now()
	home := ""      // the payee's registry when it is another one
	var made Issued // the token signed in the hold's transaction
	claims := func(h ledgerstore.Hold, nonce string) paytoken.Claims {
		return paytoken.Claims{
			Issuer: s.Issuer, Payer: h.From, Payee: r.Payee, HoldID: h.ID, MaxUnits: h.AmountUnits, Currency: s.Currency,
			IssuedAt: now.Unix(), ExpiresAt: h.ExpiresAt.Unix(), Nonce: nonce, Registry: s.Registry, Frame: s.Frame,
			PayeeRegistry: home,
		}
	}
	issued := func(h ledgerstore.Hold, _ *ledgerstore.Transfer) (ledgerstore.HoldStep, error) {
		env, err := event(events.TypePaymentTokenIssued, "payment-token-issued-", h, now, issuedPayload{
			HoldID: h.ID, Payer: h.From, Payee: r.Payee, MaxUnits: h.AmountUnits, Currency: s.Currency,
			ExpiresAt: h.ExpiresAt, Nonce: nonce, Description: h.Memo, PayeeRegistry: home,
		})
		if err != nil {
			return ledgerstore.HoldStep{}, err
		}
		// Signed here so that the response, and its record, commit with
		// the hold.
		c := claims(h, nonce)
		tok, err := paytoken.Sign(s.Key, c)
		if err != nil {
			return ledgerstore.HoldStep{}, err
		}
		made = Issued{Token: tok, Claims: c, Hold: h}
		step := ledgerstore.HoldStep{Events: []events.Envelope{env}}
		if r.Record != nil {
			step.Record, err = r.Record(made)
		}
		return step, err
	}
	hr := ledgerstore.HoldRequest{
		From: r.Payer, To: r.Payee, AmountUnits: r.MaxUnits, Memo: r.Description,
		ExpiresAt: now.Add(ttl), IdempotencyKey: r.IdempotencyKey,
	}
	h, err := s.Ledger.PlaceHoldWith(ctx, hr, issued)
	if err != nil && !errors.Is(err, ledgerstore.ErrRecorded) {
		// Not known here: perhaps the payee lives on a peer registry (the
		// local path, the common one, costs no lookup).
		if home, err = s.payeeHome(ctx, r.Payee, err); err != nil {
			return Issued{}, err
		}
		h, err = s.Cross.Ledger.PlacePaidXferHold(ctx, hr, home, issued)
	}
	if err != nil {
		return Issued{}, err
	}
	if !h.Replayed && made.Hold.ID == h.ID {
		return made, nil
	}
	// A replay: a token for the original hold, with a fresh nonce (the
	// hold still settles once).
	c := claims(h, nonce)
	tok, err := paytoken.Sign(s.Key, c)
	if err != nil {
		return Issued{}, err
	}
	return Issued{Token: tok, Claims: c, Hold: h}, nil
}

// Settled is a settled token. For a payee here the hold was posted
// (Status "posted") by transfer TransferID; for a payee on another
// registry (TargetRegistry) TransferID is the cross-registry transfer
// accepted in the hold's place (Status its state, "pending" at first), and
// FeeUnits/NetUnits are what the payee's registry charges and credits
// when it commits.
type Settled struct {
	Claims                          paytoken.Claims
	HoldID, TransferID              uuid.UUID
	Payer, Payee                    string
	AmountUnits, FeeUnits, NetUnits int64
	Status                          string
	TargetRegistry                  string
}

// Settle posts the token's hold for amountUnits (1..max) to the payee,
// who must be the caller. Nothing moves unless every check passes:
// forged or malformed tokens are Invalid, another payee's Forbidden, an
// expired one FailedPrecondition, an amount over the maximum Invalid, a
// token already settled Conflict, one released FailedPrecondition.
//
// A token of another registry of the frame is forwarded to it (the payee
// lives here, the payer there); a token whose payee lives on another
// registry becomes a cross-registry transfer (settleCross).
func (s *Service) Settle(ctx context.Context, caller, tok string, amountUnits int64) (Settled, error) {
	return s.SettleRecorded(ctx, caller, tok, amountUnits, nil)
}

// Forwards reports whether Settle and Release hand tok to another
// registry or settle it across registries, where record (below) is not
// used: the caller keeps its own idempotency record for those.
func (s *Service) Forwards(tok string) bool {
	c, err := paytoken.Peek(tok)
	return err == nil && (c.Registry != s.Registry || c.PayeeRegistry != "")
}

// SettleRecorded is Settle; for a token of this registry and payee, record
// (when set) builds the API response's idempotency record from the
// settlement, and it commits with the hold's post.
func (s *Service) SettleRecorded(ctx context.Context, caller, tok string, amountUnits int64, record func(Settled) (*ledgerstore.StepRecord, error)) (Settled, error) {
	if issuer, ok, err := s.foreign(tok, caller); ok || err != nil {
		if err != nil {
			return Settled{}, err
		}
		return s.Cross.Peers.Settle(ctx, issuer, caller, tok, amountUnits)
	}
	c, err := paytoken.VerifyFor(tok, caller, s.Keys(), s.now())
	if err != nil {
		return Settled{}, err
	}
	if err := s.settleable(c, amountUnits); err != nil {
		return Settled{}, err
	}
	if c.PayeeRegistry != "" {
		return s.settleCross(ctx, c, amountUnits, false)
	}
	now := s.now()
	h, t, err := s.Ledger.PostHoldWith(ctx, c.HoldID, amountUnits, func(h ledgerstore.Hold, t *ledgerstore.Transfer) (ledgerstore.HoldStep, error) {
		if err := matches(c, h); err != nil {
			return ledgerstore.HoldStep{}, err
		}
		env, err := event(events.TypePaymentSettled, "payment-settled-", h, now, settledPayload{
			HoldID: h.ID, Payer: h.From, Payee: h.To, MaxUnits: h.AmountUnits, Units: t.AmountUnits,
			FeeUnits: t.FeeUnits, NetUnits: t.NetUnits, TransferID: t.ID, Nonce: c.Nonce,
		})
		if err != nil {
			return ledgerstore.HoldStep{}, err
		}
		step := ledgerstore.HoldStep{Events: []events.Envelope{env}}
		if record != nil {
			step.Record, err = record(localSettled(c, h, *t))
		}
		return step, err
	})
	switch {
	case apperr.Is(err, apperr.Conflict):
		return Settled{}, apperr.Wrap(err, apperr.Conflict, "payment token was already settled")
	case err != nil:
		return Settled{}, err
	case h.Replayed:
		return Settled{}, apperr.New(apperr.Conflict, "payment token was already settled (transfer %s)", t.ID)
	}
	return localSettled(c, h, t), nil
}

func localSettled(c paytoken.Claims, h ledgerstore.Hold, t ledgerstore.Transfer) Settled {
	return Settled{Claims: c, HoldID: h.ID, TransferID: t.ID, Payer: h.From, Payee: h.To, AmountUnits: t.AmountUnits,
		FeeUnits: t.FeeUnits, NetUnits: t.NetUnits, Status: string(h.Status)}
}

// settleable checks a verified token against this registry and the amount.
func (s *Service) settleable(c paytoken.Claims, amountUnits int64) error {
	if c.Registry != s.Registry {
		return apperr.New(apperr.Invalid, "payment token was issued by registry %q; settle it there", c.Registry)
	}
	if amountUnits <= 0 {
		return apperr.New(apperr.Invalid, "the amount to settle must be positive")
	}
	if amountUnits > c.MaxUnits {
		return apperr.New(apperr.Invalid, "cannot settle %s from a payment token of at most %s", money.Format(amountUnits), money.Format(c.MaxUnits))
	}
	return nil
}

// Release voids the token's hold: the payee declines the payment, or the
// payer withdraws it before it is settled. Releasing twice returns the
// voided hold again; releasing a settled token is FailedPrecondition.
func (s *Service) Release(ctx context.Context, caller, tok string) (ledgerstore.Hold, error) {
	if issuer, ok, err := s.foreign(tok, caller); ok || err != nil {
		if err != nil {
			return ledgerstore.Hold{}, err
		}
		return s.Cross.Peers.Release(ctx, issuer, caller, tok)
	}
	c, err := paytoken.Verify(tok, s.Keys(), s.now())
	if err != nil {
		return ledgerstore.Hold{}, err
	}
	if caller != c.Payee && caller != c.Payer {
		return ledgerstore.Hold{}, paytoken.ErrWrongAudience
	}
	return s.release(ctx, c, caller)
}

func (s *Service) release(ctx context.Context, c paytoken.Claims, caller string) (ledgerstore.Hold, error) {
	if c.Registry != s.Registry {
		return ledgerstore.Hold{}, apperr.New(apperr.Invalid, "payment token was issued by registry %q; release it there", c.Registry)
	}
	now := s.now()
	h, err := s.Ledger.VoidHoldWith(ctx, c.HoldID, func(h ledgerstore.Hold, _ *ledgerstore.Transfer) (ledgerstore.HoldStep, error) {
		if err := matches(c, h); err != nil {
			return ledgerstore.HoldStep{}, err
		}
		env, err := event(events.TypePaymentReleased, "payment-released-", h, now, releasedPayload{
			HoldID: h.ID, Payer: h.From, Payee: c.Payee, By: caller, Nonce: c.Nonce,
		})
		return ledgerstore.HoldStep{Events: []events.Envelope{env}}, err
	})
	if apperr.Is(err, apperr.FailedPrecondition) {
		return ledgerstore.Hold{}, apperr.Wrap(err, apperr.FailedPrecondition, "payment token was already settled")
	}
	if err == nil && h.Replayed && c.PayeeRegistry != "" && s.Cross != nil {
		// A cross-registry token's hold is voided when it is settled
		// (its transfer holds the amount due): that is no release.
		if x, settled, xerr := s.Cross.Ledger.PaidXferOf(ctx, c.Payer, c.HoldID); xerr != nil {
			return ledgerstore.Hold{}, xerr
		} else if settled {
			return ledgerstore.Hold{}, apperr.New(apperr.FailedPrecondition, "payment token was already settled (transfer %s)", x.ID)
		}
	}
	return h, err
}

// matches refuses a hold that is not the one the token describes (a
// token signed for another ledger's hold ID, or a bug): the transaction
// rolls back.
func matches(c paytoken.Claims, h ledgerstore.Hold) error {
	to := c.Payee
	if c.PayeeRegistry != "" {
		to = ledgerstore.TransitAccount(c.PayeeRegistry)
	}
	if h.From != c.Payer || h.To != to || h.AmountUnits != c.MaxUnits {
		return apperr.New(apperr.Invalid, "payment token does not match its hold")
	}
	return nil
}

func event(typ, keyPrefix string, h ledgerstore.Hold, now time.Time, payload any) (events.Envelope, error) {
	env, err := events.New(typ, keyPrefix+h.ID.String(), h.From, now)
	if err != nil {
		return env, err
	}
	if env.Payload, err = json.Marshal(payload); err != nil {
		return env, fmt.Errorf("paidcalls: encode %s: %w", typ, err)
	}
	return env, nil
}
