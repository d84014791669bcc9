package node

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api/paidapi"
	"github.com/theprotocol-dev/theprotocol/api/registryapi"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/paidcalls"
	"github.com/theprotocol-dev/theprotocol/xfer"
)

// mountPaid serves payment tokens on nodes that are both a registry (it
// signs with the registry's key, verifiable at its JWKS) and a TEG (it
// holds the payer's funds). With the cross-registry machinery, payees may
// live on peer registries of the frame, and this registry's payees may
// settle tokens of its peers here (forwarded to the issuer).
func (n *Node) mountPaid(v1 *gin.RouterGroup) error {
	if n.Ledger == nil || n.RegistryStore == nil {
		return nil
	}
	o := n.opts
	key, err := auth.LoadOrCreateKey(o.RegistrySettings.KeyFile(o.DataDir, o.Registry.ID))
	if err != nil {
		return fmt.Errorf("payment token signing key: %w", err)
	}
	n.PaidCalls = &paidcalls.Service{
		Ledger: n.Ledger, Key: key, Issuer: registryapi.Issuer(o.Frame.TrustDomain, o.Registry.ID),
		Registry: o.Registry.ID, Frame: o.Frame.ID, Currency: o.Frame.Currency, Now: o.Now,
	}
	if n.Xfer != nil {
		n.PaidCalls.Cross = &paidcalls.Cross{Ledger: n.Ledger, Router: n.Xfer.Router, Settlement: n.Xfer.Batcher,
			Peers: paidPeers{n.Xfer.Client}}
	}
	(&paidapi.Handler{Service: n.PaidCalls, Idempotency: n.ledgerIdem, Records: n.Ledger, Auth: n.Auth, Now: o.Now}).Mount(v1)
	return nil
}

// attachPaidTLS mounts the forwarded-token routes on the mTLS listener.
func (n *Node) attachPaidTLS(mux *http.ServeMux) {
	if n.PaidCalls == nil || n.Xfer == nil {
		return
	}
	n.Xfer.Participant.RegisterPaid(mux, paidIssuer{n.PaidCalls})
}

// paidPeers adapts the peer client to paidcalls.Peers (the forwarding
// side).
type paidPeers struct{ c *xfer.Client }

func (p paidPeers) Settle(ctx context.Context, issuer, payee, tok string, amountUnits int64) (paidcalls.Settled, error) {
	a, err := p.c.PaidSettle(ctx, issuer, xfer.PaidRequest{Token: tok, Payee: payee, AmountUnits: amountUnits})
	if err != nil {
		return paidcalls.Settled{}, err
	}
	return paidcalls.Settled{HoldID: a.HoldID, TransferID: a.TransferID, Payer: a.Payer, Payee: a.Payee, AmountUnits: a.AmountUnits,
		FeeUnits: a.FeeUnits, NetUnits: a.NetUnits, Status: a.Status, TargetRegistry: a.TargetRegistry}, nil
}

func (p paidPeers) Release(ctx context.Context, issuer, caller, tok string) (ledgerstore.Hold, error) {
	a, err := p.c.PaidRelease(ctx, issuer, xfer.PaidRequest{Token: tok, Payee: caller})
	if err != nil {
		return ledgerstore.Hold{}, err
	}
	return ledgerstore.Hold{ID: a.HoldID, Status: ledgerstore.HoldStatus(a.Status)}, nil
}

// paidIssuer adapts paidcalls.Service to xfer.PaidIssuer (the issuing
// side).
type paidIssuer struct{ s *paidcalls.Service }

func (p paidIssuer) SettleFromPeer(ctx context.Context, peer string, r xfer.PaidRequest) (xfer.PaidAnswer, error) {
	s, err := p.s.SettleFromPeer(ctx, peer, r.Payee, r.Token, r.AmountUnits)
	if err != nil {
		return xfer.PaidAnswer{}, err
	}
	return xfer.PaidAnswer{HoldID: s.HoldID, TransferID: s.TransferID, Payer: s.Payer, Payee: s.Payee, AmountUnits: s.AmountUnits,
		FeeUnits: s.FeeUnits, NetUnits: s.NetUnits, Status: s.Status, TargetRegistry: s.TargetRegistry}, nil
}

func (p paidIssuer) ReleaseFromPeer(ctx context.Context, peer string, r xfer.PaidRequest) (xfer.PaidAnswer, error) {
	h, err := p.s.ReleaseFromPeer(ctx, peer, r.Payee, r.Token)
	if err != nil {
		return xfer.PaidAnswer{}, err
	}
	return xfer.PaidAnswer{HoldID: h.ID, Status: string(h.Status)}, nil
}
