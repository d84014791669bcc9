package federationapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/federation"
)

// Topology is what the topology routes need: the current trusted set and
// a walk on demand. *federation.Discovery implements it.
type Topology interface {
	Topology() federation.Topology
	Run(ctx context.Context) federation.Topology
}

// TopologyOptions wires the topology routes.
type TopologyOptions struct {
	Discovery   Topology
	Idempotency api.IdempotencyStore
	Auth        gin.HandlerFunc
	Now         func() time.Time
}

// MountTopology registers
//
//	GET  /federation/topology                 the trusted set, each registry
//	                                          with the chain that reached it
//	POST /admin/federation/topology/discover  walk the graph now (admin)
//
// The first is public like GET /federation/peers: it shows the same kind
// of facts (who is licensed, where their mTLS listeners are).
func MountTopology(v1 *gin.RouterGroup, o TopologyOptions) {
	if o.Discovery == nil {
		return
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	v1.GET("/federation/topology", func(c *gin.Context) {
		c.JSON(http.StatusOK, o.Discovery.Topology())
	})
	if o.Idempotency == nil {
		return
	}
	p := v1
	if o.Auth != nil {
		p = v1.Group("", o.Auth)
	}
	p.POST("/admin/federation/topology/discover", api.RequireScope(api.ScopeAdmin), api.Idempotency(o.Idempotency, false, o.Now),
		func(c *gin.Context) {
			c.JSON(http.StatusOK, o.Discovery.Run(c.Request.Context()))
		})
}
