// Package eventstoreapi serves the frame EventStore's read side (the supply
// audit, per-source progress, projected balances) and the admin-only
// emission-policy endpoints.
package eventstoreapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/commondb"
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
}

// Mount registers the routes under v1.
func (h *Handler) Mount(v1 *gin.RouterGroup) {
	if h.Now == nil {
		h.Now = time.Now
	}
	p := v1.Group("/projections")
	p.GET("/supply-audit", h.supplyAudit)
	p.GET("/sources", h.sources)
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
	rows, err := h.Pool.Query(c.Request.Context(), `SELECT bucket, balance FROM projection_balances WHERE account = $1 ORDER BY bucket`, account)
	if err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "projections unavailable"))
		return
	}
	type bal struct {
		Bucket  string `json:"bucket"`
		Balance int64  `json:"balance_units"`
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (bal, error) {
		var b bal
		return b, r.Scan(&b.Bucket, &b.Balance)
	})
	if err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "projections unavailable"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"account": account, "balances": list})
}

// PolicyRule is one emission-policy row.
type PolicyRule struct {
	EventType          string    `json:"event_type"`
	EmitFromTEG        bool      `json:"emit_from_teg"`
	EmitFromRegistry   bool      `json:"emit_from_registry"`
	EmitFromEventStore bool      `json:"emit_from_eventstore"`
	EmitFromWorker     bool      `json:"emit_from_worker"`
	UpdatedAt          time.Time `json:"updated_at"`
	UpdatedBy          string    `json:"updated_by"`
}

func (h *Handler) policyList(c *gin.Context) {
	rows, err := commondb.New().EmissionPolicyList(c.Request.Context(), h.Pool)
	if err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "policy unavailable"))
		return
	}
	out := make([]PolicyRule, len(rows))
	for i, r := range rows {
		out[i] = PolicyRule{r.EventType, r.EmitFromTeg, r.EmitFromRegistry, r.EmitFromEventstore, r.EmitFromWorker, r.UpdatedAt, r.UpdatedBy}
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
	now := h.Now()
	var rule PolicyRule
	err := db.NewStore(h.Pool, "eventstore").Tx(c.Request.Context(), func(tx pgx.Tx) error {
		r, err := commondb.New().EmissionPolicyUpsert(c.Request.Context(), tx, commondb.EmissionPolicyUpsertParams{
			EventType: typ, EmitFromTeg: *req.EmitFromTEG, EmitFromRegistry: *req.EmitFromRegistry,
			EmitFromEventstore: *req.EmitFromEventStore, EmitFromWorker: *req.EmitFromWorker, Now: now, UpdatedBy: principal.Subject,
		})
		if err != nil {
			return err
		}
		rule = PolicyRule{r.EventType, r.EmitFromTeg, r.EmitFromRegistry, r.EmitFromEventstore, r.EmitFromWorker, r.UpdatedAt, r.UpdatedBy}
		return h.emitChanged(c.Request.Context(), tx, rule)
	})
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, rule)
}

func (h *Handler) emitChanged(ctx context.Context, tx pgx.Tx, rule PolicyRule) error {
	key := fmt.Sprintf("emission-policy-%s-%d", rule.EventType, rule.UpdatedAt.UnixNano())
	env, err := events.New(events.TypeEmissionPolicyChanged, key, rule.EventType, rule.UpdatedAt)
	if err != nil {
		return err
	}
	if env.Payload, err = json.Marshal(rule); err != nil {
		return err
	}
	return h.Outbox.Write(ctx, tx, env)
}
