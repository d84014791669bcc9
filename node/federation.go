package node

import (
	"context"
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api/federationapi"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/federation"
)

// mountFederation serves the federation routes. The treasury allocation
// needs the node's TEG and its cross-registry machinery.
func (n *Node) mountFederation(v1 *gin.RouterGroup) {
	o := federationapi.Options{Idempotency: n.ledgerIdem, Auth: n.Auth, Now: n.opts.Now, Licences: n.licences()}
	if n.Ledger != nil && n.Xfer != nil && n.Payments != nil && n.Payments.Cross != nil {
		res := n.homeResolver()
		n.funding = &federation.Funding{
			Self: n.opts.Registry.ID, Mainframe: n.opts.Registry.Mainframe, Payments: n.Payments,
			// A peer, or a registry of the trusted set (paid directly).
			Known: res.Trusted,
		}
		o.Funding = n.funding
		o.Resolver = res
	}
	federationapi.New(o).Mount(v1)
}

// FundRegistry allocates amountUnits from this mainframe's treasury to
// registry's treasury through the cross-registry saga (see
// federation.Funding). The dev stack calls it at start with a fixed key, so
// it funds each operator registry once.
func (n *Node) FundRegistry(ctx context.Context, registry string, amountUnits int64, reason, key string) (ledgerstore.Xfer, error) {
	if n.funding == nil {
		return ledgerstore.Xfer{}, apperr.New(apperr.FailedPrecondition, "node %s has no cross-registry machinery", n.opts.Registry.ID)
	}
	return n.funding.Allocate(ctx, federation.Allocation{
		Registry: registry, AmountUnits: amountUnits, Reason: reason, Actor: "system:dev-stack", IdempotencyKey: key,
	})
}

// DevOperatorFundingUnits is what the dev stack allocates to each operator
// registry's treasury at its first start: enough for its developers'
// reputation bonds and grants in the walkthrough.
const DevOperatorFundingUnits int64 = 100_000 * 100_000_000

// FundFrameOperators allocates DevOperatorFundingUnits to the treasury of
// every other TEG registry of this mainframe's frame, once: the key is
// fixed per registry, so a restart replays the first allocation instead of
// paying again. A no-op on other nodes. The dev stack calls it; a
// production operator allocates through the admin route instead.
func (n *Node) FundFrameOperators(ctx context.Context) error {
	if !n.opts.Registry.Mainframe || n.funding == nil {
		return nil
	}
	for _, r := range n.opts.Frame.Registries {
		if r.ID == n.opts.Registry.ID || !r.HasRole(config.RoleTEG) {
			continue
		}
		x, err := n.FundRegistry(ctx, r.ID, DevOperatorFundingUnits, "dev stack: the operator registry's starting treasury", "dev-stack-funding-"+r.ID)
		if err != nil {
			return fmt.Errorf("fund %s: %w", r.ID, err)
		}
		n.log.Info("operator registry funded from the mainframe treasury", "registry", r.ID, "transfer", x.ID, "status", x.Status, "replayed", x.Replayed)
	}
	return nil
}
