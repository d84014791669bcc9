// Package eventstoreapi serves the frame EventStore's read side (the supply
// audit, per-source progress, reconciliation with the registries,
// projected balances) and the admin-only emission-policy endpoints.
package eventstoreapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
)

// Handler serves one frame's EventStore.
type Handler struct {
	Frame    string
	Registry string // the node hosting it (author of EmissionPolicyChanged)
	Pool     *pgxpool.Pool
	Outbox   *db.OutboxWriter
	Idem     api.IdempotencyStore
	Auth     gin.HandlerFunc // authentication middleware (sets api.Principal)
	Now      func() time.Time

	policies *db.PolicyStore
}

// Mount registers the routes under v1.
func (h *Handler) Mount(v1 *gin.RouterGroup) {
	if h.Now == nil {
		h.Now = time.Now
	}
	h.policies = db.NewPolicyStore(db.NewStore(h.Pool, "eventstore"), h.Outbox)
	p := v1.Group("/projections")
	p.GET("/supply-audit", h.supplyAudit)
	p.GET("/sources", h.sources)
	p.GET("/reconciliation", h.reconciliation)
	admin := v1.Group("/admin", h.Auth, api.RequireScope(api.ScopeAdmin))
	admin.GET("/projections/balances", h.balances)
	admin.GET("/emission-policy", h.policyList)
	admin.PUT("/emission-policy/:type", api.Idempotency(h.Idem, false, h.Now), h.policyPut)
}

func (h *Handler) supplyAudit(c *gin.Context) {
	rep, err := ingest.Audit(c.Request.Context(), h.Pool, h.Frame)
	if err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "supply audit unavailable"))
		return
	}
	c.JSON(http.StatusOK, rep)
}

// reconciliation is the EventStore compared with each registry's newest
// balance checkpoint, and the transit netting of every pair of
// registries; failures are what the supply audit fails on.
func (h *Handler) reconciliation(c *gin.Context) {
	rep, err := ingest.Reconciliation(c.Request.Context(), h.Pool, h.Frame)
	if err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "reconciliation unavailable"))
		return
	}
	c.JSON(http.StatusOK, rep)
}

func (h *Handler) sources(c *gin.Context) {
	list, err := ingest.Progress(c.Request.Context(), h.Pool)
	if err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "progress unavailable"))
		return
	}
	reg, src := c.Query("registry"), c.Query("source")
	out := list[:0]
	for _, s := range list {
		if (reg == "" || s.Registry == reg) && (src == "" || s.Source == src) {
			out = append(out, s)
		}
	}
	c.JSON(http.StatusOK, gin.H{"frame": h.Frame, "sources": out})
}

func (h *Handler) balances(c *gin.Context) {
	account := c.Query("account")
	if account == "" || len(account) > 200 {
		api.WriteError(c, apperr.New(apperr.Invalid, "query parameter account is required (at most 200 bytes)"))
		return
	}
	list, err := ingest.Balances(c.Request.Context(), h.Pool, account)
	if err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "projections unavailable"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"account": account, "balances": list})
}

// PolicyRule is one emission-policy row.
type PolicyRule = db.PolicyRule

func (h *Handler) policyList(c *gin.Context) {
	out, err := h.policies.List(c.Request.Context())
	if err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "policy unavailable"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"rules": out})
}

type policyPutRequest struct {
	EmitFromTEG        *bool `json:"emit_from_teg"`
	EmitFromRegistry   *bool `json:"emit_from_registry"`
	EmitFromEventStore *bool `json:"emit_from_eventstore"`
	EmitFromWorker     *bool `json:"emit_from_worker"`
}

// policyPut replaces one rule and emits EmissionPolicyChanged in the same
// transaction; the consumer reloads the policy when it ingests that event.
func (h *Handler) policyPut(c *gin.Context) {
	typ := c.Param("type")
	if typ == "" || len(typ) > events.MaxTypeLen {
		api.WriteError(c, apperr.New(apperr.Invalid, "event type must be 1..%d bytes", events.MaxTypeLen))
		return
	}
	var req policyPutRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	if req.EmitFromTEG == nil || req.EmitFromRegistry == nil || req.EmitFromEventStore == nil || req.EmitFromWorker == nil {
		api.WriteError(c, apperr.New(apperr.Invalid, "all of emit_from_teg, emit_from_registry, emit_from_eventstore, emit_from_worker are required"))
		return
	}
	principal, _ := api.PrincipalFrom(c)
	perm := events.Permission{
		FromTEG: *req.EmitFromTEG, FromRegistry: *req.EmitFromRegistry,
		FromEventStore: *req.EmitFromEventStore, FromWorker: *req.EmitFromWorker,
	}
	rule, err := h.policies.Put(c.Request.Context(), typ, perm, principal.Subject, h.Now())
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, rule)
}
