// Package federationapi serves the federation routes: the mainframe's
// treasury allocations to operator registries (and, in peers.go, the
// operator-managed peer set). Handlers decode, authorise, call the
// federation service and encode.
package federationapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/federation"
	"github.com/theprotocol-dev/theprotocol/money"
)

// Options wires the handler. Funding nil leaves the allocation route out
// (a node without a TEG).
type Options struct {
	Funding *federation.Funding
	// Licences nil leaves the peer routes out (a node without a registry).
	Licences *federation.Licences
	// Resolver nil leaves GET /federation/resolve/:account out.
	Resolver    *federation.Resolver
	Idempotency api.IdempotencyStore
	Auth        gin.HandlerFunc
	Now         func() time.Time
}

// Handler serves the federation routes.
type Handler struct{ o Options }

// New returns a Handler.
func New(o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{o: o}
}

// AllocationRequest is the body of POST /admin/federation/allocations.
type AllocationRequest struct {
	Registry    string `json:"registry"`
	AmountUnits *int64 `json:"amount_units,omitempty"`
	Amount      string `json:"amount,omitempty"`
	Reason      string `json:"reason"`
}

// Mount registers, for admins:
//
//	POST /admin/federation/allocations  fund a peer registry's treasury
//	                                     (mainframe only; 202, then follow
//	                                     GET /transfers/{id})
//	POST /admin/federation/peers        license a peer by its mTLS base URL
//	POST /admin/federation/peers/:registry/{suspend,reinstate,revoke}
//
// and, for anyone, GET /federation/peers (every peer, live status); for
// any authenticated caller, GET /federation/resolve/:account (an account's
// home registry; 409 when two registries claim it).
func (h *Handler) Mount(v1 *gin.RouterGroup) {
	if h.o.Licences != nil {
		v1.GET("/federation/peers", h.listPeers)
	}
	p := v1
	if h.o.Auth != nil {
		p = v1.Group("", h.o.Auth)
	}
	admin := api.RequireScope(api.ScopeAdmin)
	if h.o.Resolver != nil {
		// Authenticated: an answer may cost a question to every peer.
		p.GET("/federation/resolve/:account", api.RequireScope(api.ScopeAgent, api.ScopeDeveloper, api.ScopeAdmin), h.resolve)
	}
	if h.o.Funding != nil && h.o.Idempotency != nil {
		p.POST("/admin/federation/allocations", admin, api.Idempotency(h.o.Idempotency, true, h.o.Now), h.allocate)
	}
	if h.o.Licences != nil && h.o.Idempotency != nil {
		idem := api.Idempotency(h.o.Idempotency, false, h.o.Now)
		p.POST("/admin/federation/peers", admin, idem, h.addPeer)
		p.POST("/admin/federation/peers/:registry/suspend", admin, idem, h.decide(h.o.Licences.Suspend))
		p.POST("/admin/federation/peers/:registry/reinstate", admin, idem, h.decide(h.o.Licences.Reinstate))
		p.POST("/admin/federation/peers/:registry/revoke", admin, idem, h.decide(h.o.Licences.Revoke))
	}
}

func (h *Handler) allocate(c *gin.Context) {
	var req AllocationRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	if err := api.RequireFields(api.Field("registry", req.Registry), api.Field("reason", req.Reason)); err != nil {
		api.WriteError(c, err)
		return
	}
	amount, err := amountOf(req.AmountUnits, req.Amount)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	p, _ := api.PrincipalFrom(c)
	x, err := h.o.Funding.Allocate(c.Request.Context(), federation.Allocation{
		Registry: req.Registry, AmountUnits: amount, Reason: req.Reason, Actor: p.Subject,
		IdempotencyKey: api.IdempotencyKeyFrom(c),
	})
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, ledgerapi.XferDTO(x))
}

func amountOf(units *int64, decimal string) (int64, error) {
	switch {
	case units != nil && decimal != "":
		return 0, apperr.New(apperr.Invalid, "give either amount_units or amount, not both")
	case units != nil:
		if *units <= 0 {
			return 0, apperr.New(apperr.Invalid, "amount_units must be a positive integer number of base units")
		}
		return *units, nil
	case decimal != "":
		u, err := money.Parse(decimal)
		if err != nil || u <= 0 {
			return 0, apperr.New(apperr.Invalid, "amount must be a positive decimal string like \"12.5\" with at most 8 decimals")
		}
		return u, nil
	}
	return 0, apperr.New(apperr.Invalid, "amount_units (integer base units) or amount (decimal string) is required")
}

// PeerRequest is the body of POST /admin/federation/peers.
type PeerRequest struct {
	BaseURL string `json:"base_url"`
	Reason  string `json:"reason"`
}

// DecisionRequest is the body of a suspension, reinstatement or revocation.
type DecisionRequest struct {
	Reason string `json:"reason"`
}

func (h *Handler) addPeer(c *gin.Context) {
	var req PeerRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	if err := api.RequireFields(api.Field("base_url", req.BaseURL), api.Field("reason", req.Reason)); err != nil {
		api.WriteError(c, err)
		return
	}
	p, _ := api.PrincipalFrom(c)
	v, err := h.o.Licences.Add(c.Request.Context(), req.BaseURL, p.Subject, req.Reason)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusCreated, v)
}

func (h *Handler) decide(f func(ctx context.Context, registry, by, reason string) (federation.PeerView, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req DecisionRequest
		if err := api.DecodeJSON(c, &req); err != nil {
			api.WriteError(c, err)
			return
		}
		if err := api.RequireFields(api.Field("reason", req.Reason)); err != nil {
			api.WriteError(c, err)
			return
		}
		p, _ := api.PrincipalFrom(c)
		v, err := f(c.Request.Context(), c.Param("registry"), p.Subject, req.Reason)
		if err != nil {
			api.WriteError(c, err)
			return
		}
		c.JSON(http.StatusOK, v)
	}
}

// maxListedPeers bounds GET /federation/peers.
const maxListedPeers = 1000

func (h *Handler) listPeers(c *gin.Context) {
	vs, err := h.o.Licences.List(c.Request.Context(), maxListedPeers)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"peers": vs})
}

func (h *Handler) resolve(c *gin.Context) {
	r, err := h.o.Resolver.Resolve(c.Request.Context(), c.Param("account"))
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}
