// Package payments decides how a payment reaches its receiver, in one
// place: a receiver with an account on this registry is paid by a transfer
// here; an agent whose home is a peer registry of the frame is paid by a
// cross-registry transfer, which reserves the amount (a hold), records the
// transfer as pending and hands it to the settlement saga (package xfer).
//
// The transfer here is tried first and the receiver's home is looked up
// only when this registry does not know the receiver: the local path, by
// far the common one, costs no extra read. The ledger API calls a Service;
// the node wires it.
package payments

import (
	"context"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
)

// Transferer commits transfers on this registry: *ledgerstore.Store (one
// transaction each) or *ledgerstore.GroupCommitter (batched; the
// production choice).
type Transferer interface {
	Transfer(ctx context.Context, req ledgerstore.TransferRequest) (ledgerstore.Transfer, error)
}

// Ledger is what payments reads from this registry's TEG.
// *ledgerstore.Store implements it.
type Ledger interface {
	AccountExists(ctx context.Context, id string) (bool, error)
	GetTransfer(ctx context.Context, id uuid.UUID) (ledgerstore.Transfer, error)
	GetXfer(ctx context.Context, id uuid.UUID) (ledgerstore.Xfer, error)
	GetBridgeTransfer(ctx context.Context, id uuid.UUID) (ledgerstore.BridgeTransfer, error)
}

// Router finds the peer registry where an account lives ("" when no peer
// has it). *xfer.Router implements it.
type Router interface {
	Home(ctx context.Context, account string) (string, error)
}

// Accepter records accepted cross-registry transfers: the hold and the
// pending row commit together, idempotently per sender and key.
// *xfer.Accepter implements it.
type Accepter interface {
	Begin(ctx context.Context, r ledgerstore.XferRequest) (ledgerstore.Xfer, error)
}

// Settlement carries accepted transfers to their target in settlement
// workflows. *xfer.Batcher implements it.
type Settlement interface {
	// Admit waits while the pair's backlog of accepted, unsettled
	// transfers is full (or until ctx ends).
	Admit(ctx context.Context, target string) error
	// Add queues an accepted transfer for settlement.
	Add(x ledgerstore.Xfer)
}

// Cross is the cross-registry machinery; all three are required.
type Cross struct {
	Router     Router
	Accepter   Accepter
	Settlement Settlement
}

// Frames sends to receivers whose home is another frame, over the
// cross-frame bridge. *bridge.Router implements it.
type Frames interface {
	// Send pays r by a bridge transfer when a peer frame claims r.To
	// (ok false, nothing written, when none does).
	Send(ctx context.Context, r ledgerstore.TransferRequest) (t ledgerstore.BridgeTransfer, ok bool, err error)
}

// Service routes payments. Ledger and Transfers are required; Cross nil
// pays receivers on this registry only; Frames (a frame's mainframe) also
// pays receivers of peer frames.
type Service struct {
	Ledger    Ledger
	Transfers Transferer
	Cross     *Cross
	Frames    Frames
}

// Payment is a transfer on this registry, or, when Cross is true, a
// cross-registry transfer, or, when Frame is true, a bridge transfer.
type Payment struct {
	Transfer ledgerstore.Transfer       // when neither
	Xfer     ledgerstore.Xfer           // when Cross
	Bridge   ledgerstore.BridgeTransfer // when Frame
	Cross    bool
	Frame    bool
}

// Parties are the payment's sender and receiver.
func (p Payment) Parties() (from, to string) {
	if p.Frame {
		return p.Bridge.Sender, p.Bridge.Recipient
	}
	if p.Cross {
		return p.Xfer.From, p.Xfer.To
	}
	return p.Transfer.From, p.Transfer.To
}

// Pay pays r: Transfer, then, if this registry does not know the
// receiver, Reroute. r.RequestHash is for the transfer here only.
func (s *Service) Pay(ctx context.Context, r ledgerstore.TransferRequest) (Payment, error) {
	t, err := s.Transfer(ctx, r)
	if err == nil {
		return Payment{Transfer: t}, nil
	}
	return s.Reroute(ctx, r, err)
}

// Transfer is Pay's first step: the transfer on this registry. A caller
// that must record something between the steps (the transfer route stores
// its idempotency claim there) calls Transfer, then Reroute with the
// error.
func (s *Service) Transfer(ctx context.Context, r ledgerstore.TransferRequest) (ledgerstore.Transfer, error) {
	return s.Transfers.Transfer(ctx, r)
}

// Reroute is Pay's second step, after Transfer failed with cause. When
// cause is NotFound and the receiver is an agent or a developer wallet
// with no account here whose home is a peer registry, r is accepted as a cross-registry
// transfer to it. Otherwise cause is returned: the payment has no other
// route (also when reading the local account fails, as cause is the better
// answer then). The lookup of the receiver's home can fail by itself
// (Unavailable: peers unreachable), and so can the acceptance.
//
// A receiver no registry of this frame claims is then looked up among the
// peer frames (Frames): one of them claiming it, r becomes a bridge
// transfer to that frame.
func (s *Service) Reroute(ctx context.Context, r ledgerstore.TransferRequest, cause error) (Payment, error) {
	if (s.Cross == nil && s.Frames == nil) || !apperr.Is(cause, apperr.NotFound) {
		return Payment{}, cause
	}
	if k, err := ledger.KindOf(r.To); err != nil || !ledger.IsUserKind(k) {
		return Payment{}, cause
	}
	if local, err := s.Ledger.AccountExists(ctx, r.To); err != nil || local {
		return Payment{}, cause
	}
	home := ""
	if s.Cross != nil {
		var err error
		if home, err = s.Cross.Router.Home(ctx, r.To); err != nil {
			return Payment{}, err
		}
	}
	if home == "" {
		if s.Frames == nil {
			return Payment{}, cause
		}
		t, ok, err := s.Frames.Send(ctx, r)
		if err != nil {
			return Payment{}, err
		}
		if !ok {
			return Payment{}, cause
		}
		return Payment{Bridge: t, Frame: true}, nil
	}
	x, err := s.Forward(ctx, ledgerstore.XferRequest{
		From: r.From, To: r.To, Target: home, AmountUnits: r.AmountUnits, Memo: r.Memo, IdempotencyKey: r.IdempotencyKey,
	})
	if err != nil {
		return Payment{}, err
	}
	return Payment{Xfer: x, Cross: true}, nil
}

// Forward accepts a cross-registry transfer to r.Target: the hold and the
// pending row commit first, then the transfer joins its pair's settlement
// batch. While the pair's settlement backlog is full it waits, before
// anything is written (Unavailable if the wait ends with ctx). A replay
// (same sender and key) returns the transfer without queueing it again.
func (s *Service) Forward(ctx context.Context, r ledgerstore.XferRequest) (ledgerstore.Xfer, error) {
	if err := s.Cross.Settlement.Admit(ctx, r.Target); err != nil {
		return ledgerstore.Xfer{}, apperr.Wrap(err, apperr.Unavailable,
			"the settlement backlog to %s is full; retry with the same Idempotency-Key", r.Target)
	}
	x, err := s.Cross.Accepter.Begin(ctx, r)
	if err != nil {
		return x, err
	}
	if !x.Replayed {
		s.Cross.Settlement.Add(x)
	}
	return x, nil
}

// Get finds payment id: a transfer on this registry, else a
// cross-registry transfer this registry coordinates. NotFound when it is
// neither (the error of the transfer lookup).
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Payment, error) {
	t, err := s.Ledger.GetTransfer(ctx, id)
	if err == nil {
		return Payment{Transfer: t}, nil
	}
	if !apperr.Is(err, apperr.NotFound) {
		return Payment{}, err
	}
	x, xerr := s.Ledger.GetXfer(ctx, id)
	if xerr == nil {
		return Payment{Xfer: x, Cross: true}, nil
	}
	if !apperr.Is(xerr, apperr.NotFound) {
		return Payment{}, xerr
	}
	if s.Frames == nil { // only a mainframe sends over the bridge
		return Payment{}, err
	}
	// Pay may have sent it over the bridge (a receiver of another frame).
	b, berr := s.Ledger.GetBridgeTransfer(ctx, id)
	if apperr.Is(berr, apperr.NotFound) {
		return Payment{}, err
	}
	if berr != nil {
		return Payment{}, berr
	}
	return Payment{Bridge: b, Frame: true}, nil
}
