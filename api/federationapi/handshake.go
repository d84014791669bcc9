package federationapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/federation"
)

// HandshakeOptions wire the admin's side of the peering handshake.
type HandshakeOptions struct {
	// Accept is federation.Handshake.Accept.
	Accept      func(ctx context.Context, registry, by, reason string) (federation.PeerView, error)
	Idempotency api.IdempotencyStore
	Auth        gin.HandlerFunc
	Now         func() time.Time
}

// MountHandshake registers, for admins,
//
//	POST /admin/federation/peers/:registry/accept  accept a pending peering
//	                                               request ({"reason"}; 200)
func MountHandshake(v1 *gin.RouterGroup, o HandshakeOptions) {
	if o.Now == nil {
		o.Now = time.Now
	}
	p := v1
	if o.Auth != nil {
		p = v1.Group("", o.Auth)
	}
	p.POST("/admin/federation/peers/:registry/accept", api.RequireScope(api.ScopeAdmin), api.Idempotency(o.Idempotency, false, o.Now),
		func(c *gin.Context) {
			var req DecisionRequest
			if err := api.DecodeJSON(c, &req); err != nil {
				api.WriteError(c, err)
				return
			}
			if err := api.RequireFields(api.Field("reason", req.Reason)); err != nil {
				api.WriteError(c, err)
				return
			}
			pr, _ := api.PrincipalFrom(c)
			v, err := o.Accept(c.Request.Context(), c.Param("registry"), pr.Subject, req.Reason)
			if err != nil {
				api.WriteError(c, err)
				return
			}
			c.JSON(http.StatusOK, v)
		})
}
