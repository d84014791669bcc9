package paidcalls

import (
	"context"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/paytoken"
)

// Paid calls across registries of one frame. The payer's registry issues
// the token (its hold goes to transit:<payee's registry>, and the token
// names that registry); the payee settles at its own registry, which
// forwards the token to the issuer over the peers' mTLS channel; the
// issuer turns the hold into a cross-registry transfer of the amount due,
// in one transaction, and the settlement saga carries it to the payee.

// CrossLedger is what cross-registry tokens need from the payer's TEG.
// *ledgerstore.Store implements it.
type CrossLedger interface {
	AccountExists(ctx context.Context, id string) (bool, error)
	PlacePaidXferHold(ctx context.Context, r ledgerstore.HoldRequest, target string, extra ledgerstore.HoldEvents) (ledgerstore.Hold, error)
	SettlePaidXfer(ctx context.Context, holdID uuid.UUID, amountUnits int64, payee, target string, extra ledgerstore.PaidXferEvents) (ledgerstore.Hold, ledgerstore.Xfer, error)
	PaidXferOf(ctx context.Context, payer string, holdID uuid.UUID) (ledgerstore.Xfer, bool, error)
}

var _ CrossLedger = (*ledgerstore.Store)(nil)

// Router finds the peer registry where an account lives ("" when none
// has it). *xfer.Router implements it.
type Router interface {
	Home(ctx context.Context, account string) (string, error)
}

// Settlement carries accepted cross-registry transfers to their target.
// *xfer.Batcher implements it.
type Settlement interface {
	Admit(ctx context.Context, target string) error
	Add(x ledgerstore.Xfer)
}

// Peers forwards a token to the registry that issued it, on behalf of the
// payee (or payer) authenticated here. The node adapts the peer client.
type Peers interface {
	Settle(ctx context.Context, issuer, payee, tok string, amountUnits int64) (Settled, error)
	Release(ctx context.Context, issuer, caller, tok string) (ledgerstore.Hold, error)
}

// Cross is the cross-registry machinery; all four are required.
type Cross struct {
	Ledger     CrossLedger
	Router     Router
	Settlement Settlement
	Peers      Peers
}

// payeeHome is where a payee this registry does not know lives; cause is
// the local refusal, returned when there is no other route.
func (s *Service) payeeHome(ctx context.Context, payee string, cause error) (string, error) {
	if s.Cross == nil || !apperr.Is(cause, apperr.NotFound) {
		return "", cause
	}
	if k, err := ledger.KindOf(payee); err != nil || !ledger.IsUserKind(k) {
		return "", cause
	}
	if local, err := s.Cross.Ledger.AccountExists(ctx, payee); err != nil || local {
		return "", cause // the payer is the unknown one, or the read failed
	}
	home, err := s.Cross.Router.Home(ctx, payee)
	if err != nil {
		return "", err
	}
	if home == "" || home == s.Registry {
		return "", cause
	}
	return home, nil
}

// foreign reports whether tok was issued by another registry of this
// frame, to be forwarded there (nothing here can verify it). The claims
// read here only route: the issuer verifies the token.
func (s *Service) foreign(tok, caller string) (issuer string, ok bool, err error) {
	if s.Cross == nil {
		return "", false, nil
	}
	c, err := paytoken.Peek(tok)
	if err != nil || c.Registry == s.Registry {
		return "", false, nil // verified (and refused) here
	}
	if c.Frame != s.Frame {
		return "", false, apperr.New(apperr.Invalid, "payment token was issued in frame %q; this registry is in %q", c.Frame, s.Frame)
	}
	if c.Payee != caller {
		return "", false, paytoken.ErrWrongAudience
	}
	if c.PayeeRegistry != s.Registry {
		return "", false, apperr.New(apperr.Invalid, "payment token was issued by registry %q for a payee of another registry; settle it there", c.Registry)
	}
	return c.Registry, true, nil
}

// SettleFromPeer settles a token of this registry for a payee living on
// registry peer, whose registry authenticated it (the peer's verified
// identity is peer). Checks as Settle's, plus: the token must name peer as
// the payee's registry.
func (s *Service) SettleFromPeer(ctx context.Context, peer, payee, tok string, amountUnits int64) (Settled, error) {
	c, err := paytoken.VerifyFor(tok, payee, s.Keys(), s.now())
	if err != nil {
		return Settled{}, err
	}
	if c.PayeeRegistry != peer {
		return Settled{}, apperr.New(apperr.Forbidden, "payment token's payee does not live on registry %q", peer)
	}
	if err := s.settleable(c, amountUnits); err != nil {
		return Settled{}, err
	}
	return s.settleCross(ctx, c, amountUnits, true)
}

// ReleaseFromPeer releases a token of this registry for its payee, living
// on registry peer.
func (s *Service) ReleaseFromPeer(ctx context.Context, peer, payee, tok string) (ledgerstore.Hold, error) {
	c, err := paytoken.VerifyFor(tok, payee, s.Keys(), s.now())
	if err != nil {
		return ledgerstore.Hold{}, err
	}
	if c.PayeeRegistry != peer {
		return ledgerstore.Hold{}, apperr.New(apperr.Forbidden, "payment token's payee does not live on registry %q", peer)
	}
	return s.release(ctx, c, payee)
}

// settleCross turns a verified cross-registry token's hold into a pending
// transfer to the payee (PaymentSettled commits with it) and hands it to
// the settlement batcher. A crash before the hand-over leaves a pending
// row, which the batcher's recovery settles. A token already settled for
// the same amount is Conflict, or, with replayOK (a forwarding registry
// retrying after a lost reply), the original settlement again: either
// way nothing moves twice.
func (s *Service) settleCross(ctx context.Context, c paytoken.Claims, amountUnits int64, replayOK bool) (Settled, error) {
	if s.Cross == nil {
		return Settled{}, apperr.New(apperr.FailedPrecondition, "this registry does not settle across registries")
	}
	fee, err := ledger.TransferFee(amountUnits, ledger.BaseFeeBps)
	if err != nil {
		return Settled{}, apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if err := s.Cross.Settlement.Admit(ctx, c.PayeeRegistry); err != nil {
		return Settled{}, apperr.Wrap(err, apperr.Unavailable, "the settlement backlog to %s is full; retry", c.PayeeRegistry)
	}
	now := s.now()
	h, x, err := s.Cross.Ledger.SettlePaidXfer(ctx, c.HoldID, amountUnits, c.Payee, c.PayeeRegistry,
		func(h ledgerstore.Hold, x ledgerstore.Xfer) ([]events.Envelope, error) {
			if err := matches(c, h); err != nil {
				return nil, err
			}
			env, err := event(events.TypePaymentSettled, "payment-settled-", h, now, settledPayload{
				HoldID: h.ID, Payer: h.From, Payee: x.To, MaxUnits: h.AmountUnits, Units: x.AmountUnits,
				FeeUnits: fee.FeeUnits, NetUnits: fee.NetUnits, TransferID: x.ID, Nonce: c.Nonce, PayeeRegistry: x.Target,
			})
			return []events.Envelope{env}, err
		})
	switch {
	case apperr.Is(err, apperr.FailedPrecondition):
		return Settled{}, apperr.Wrap(err, apperr.FailedPrecondition, "payment token was released or has expired")
	case err != nil:
		return Settled{}, err
	case x.Replayed && !replayOK:
		return Settled{}, apperr.New(apperr.Conflict, "payment token was already settled (transfer %s)", x.ID)
	case !x.Replayed:
		s.Cross.Settlement.Add(x)
	}
	return Settled{Claims: c, HoldID: h.ID, TransferID: x.ID, Payer: x.From, Payee: x.To, AmountUnits: x.AmountUnits,
		FeeUnits: fee.FeeUnits, NetUnits: fee.NetUnits, Status: string(x.Status), TargetRegistry: x.Target}, nil
}
