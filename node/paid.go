package node

import (
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api/paidapi"
	"github.com/theprotocol-dev/theprotocol/api/registryapi"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/paidcalls"
)

// mountPaid serves payment tokens on nodes that are both a registry (it
// signs with the registry's key, verifiable at its JWKS) and a TEG (it
// holds the payer's funds).
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
	(&paidapi.Handler{Service: n.PaidCalls, Idempotency: n.ledgerIdem, Auth: n.Auth, Now: o.Now}).Mount(v1)
	return nil
}
