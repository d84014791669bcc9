package node

import (
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api/svidapi"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/identity"
)

// mountAgentSVID serves agent SVID enrolment on registry nodes. With the
// dev CA (the frame's, under <DataDir>/ca/, the one the node's own SVIDs
// come from) the registry signs agents' CSRs; with SPIRE the route exists
// but answers 503, agents being SPIRE registration entries there.
func (n *Node) mountAgentSVID(v1 *gin.RouterGroup) error {
	pool := n.Pools[db.RoleRegistry]
	if pool == nil || n.RegistryStore == nil {
		return nil
	}
	o := n.opts
	h := &svidapi.Handler{Agents: n.RegistryStore, Auth: n.Auth, Idempotency: db.NewIdempotencyStore(pool), Now: o.Now}
	if o.Identity != config.IdentitySPIRE && o.DataDir != "" {
		td, err := identity.FrameTrustDomain(o.Frame)
		if err != nil {
			return err
		}
		ca, err := identity.OpenCA(o.DataDir, td, identity.CAOptions{})
		if err != nil {
			return fmt.Errorf("dev CA for agent SVIDs: %w", err)
		}
		h.CA = ca
	}
	h.Mount(v1)
	return nil
}
