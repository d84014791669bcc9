package federationapi

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/federation"
)

// CardsOptions wires the signed card view.
type CardsOptions struct {
	// Cards returns the live signed cards of a DID this registry sees
	// (federation.CardSync.Cards); it may be nil until the node's mTLS
	// identity is up (503).
	Cards func(ctx context.Context, did string) ([]federation.CardView, error)
	Auth  gin.HandlerFunc
}

// MountCards registers, for any authenticated caller,
//
//	GET /federation/cards/:did  the live signed cards of the DID, one per
//	                            origin registry (more than one: a conflict)
func MountCards(v1 *gin.RouterGroup, o CardsOptions) {
	p := v1
	if o.Auth != nil {
		p = v1.Group("", o.Auth)
	}
	p.GET("/federation/cards/:did", api.RequireScope(api.ScopeAgent, api.ScopeDeveloper, api.ScopeAdmin), func(c *gin.Context) {
		if o.Cards == nil {
			api.WriteError(c, apperr.New(apperr.Unavailable, "card sync is not running on this node"))
			return
		}
		cards, err := o.Cards(c.Request.Context(), c.Param("did"))
		if err != nil {
			api.WriteError(c, err)
			return
		}
		if len(cards) == 0 {
			api.WriteError(c, apperr.New(apperr.NotFound, "no live signed card for %s", c.Param("did")))
			return
		}
		c.JSON(http.StatusOK, gin.H{"cards": cards})
	})
}
