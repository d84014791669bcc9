// Package bridgeapi serves the cross-frame bridge on a frame's mainframe:
// sends and redemptions (202: the workflow carries them on), their status,
// and the bridge reconciliation projection.
package bridgeapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/bridge"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
)

// Service is the bridge service (*bridge.Service).
type Service interface {
	Start(ctx context.Context, r bridge.Request) (ledgerstore.BridgeTransfer, error)
	Get(ctx context.Context, id uuid.UUID) (ledgerstore.BridgeTransfer, error)
	Reconcile(ctx context.Context) bridge.Report
}

// Handler serves the bridge routes.
type Handler struct {
	Service Service
	Idem    api.IdempotencyStore
	Auth    gin.HandlerFunc
	Now     func() time.Time
}

// Request is the body of POST /bridge/transfers and /bridge/redemptions.
type Request struct {
	// Frame is the other frame: where the recipient lives (a send), or
	// the origin frame of the wrapped tokens redeemed (a redemption).
	Frame       string `json:"frame"`
	To          string `json:"to"`
	AmountUnits *int64 `json:"amount_units"`
}

// TransferDTO is a bridge operation.
type TransferDTO struct {
	ID          uuid.UUID `json:"id"`
	Kind        string    `json:"kind"` // send or redeem
	Status      string    `json:"status"`
	Frame       string    `json:"frame"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	AmountUnits int64     `json:"amount_units"`
	Amount      string    `json:"amount"`
	// Denomination is what the sender gave up: "native" on a send,
	// "wrapped:<origin frame>" on a redemption.
	Denomination string    `json:"denomination"`
	FeeUnits     int64     `json:"fee_units"`
	Reason       string    `json:"reason,omitempty"`
	WorkflowID   string    `json:"workflow_id"`
	ExpiresAt    time.Time `json:"expires_at"`
	CreatedAt    time.Time `json:"created_at"`
}

// DTO renders a bridge operation as the bridge routes (and POST /transfers to a
// receiver of another frame) answer it.
func DTO(t ledgerstore.BridgeTransfer) TransferDTO {
	d := TransferDTO{ID: t.ID, Kind: t.Kind, Status: t.Status, Frame: t.PeerFrame, From: t.Sender, To: t.Recipient,
		AmountUnits: t.AmountUnits, Amount: money.Format(t.AmountUnits), Denomination: "native", FeeUnits: t.FeeUnits,
		Reason: t.Reason, WorkflowID: t.WorkflowID, ExpiresAt: t.ExpiresAt, CreatedAt: t.CreatedAt}
	if t.Kind == ledgerstore.BridgeRedeem {
		d.Denomination = ledger.WrappedBucket(t.PeerFrame)
	}
	return d
}

// Mount registers, on the /api/v1 group:
//
//	agent|developer: POST /bridge/transfers, POST /bridge/redemptions
//	agent|developer|admin: GET /bridge/transfers/:id (parties and admins)
//	admin: GET /projections/bridge-reconciliation
func (h *Handler) Mount(v1 *gin.RouterGroup) {
	g := v1
	if h.Auth != nil {
		g = v1.Group("", h.Auth)
	}
	now := h.Now
	if now == nil {
		now = time.Now
	}
	idem := api.Idempotency(h.Idem, true, now)
	user := api.RequireScope(api.ScopeAgent, api.ScopeDeveloper)
	anyScope := api.RequireScope(api.ScopeAgent, api.ScopeDeveloper, api.ScopeAdmin)
	admin := api.RequireScope(api.ScopeAdmin)
	g.POST("/bridge/transfers", user, idem, h.start(ledgerstore.BridgeSend))
	g.POST("/bridge/redemptions", user, idem, h.start(ledgerstore.BridgeRedeem))
	g.GET("/bridge/transfers/:id", anyScope, h.get)
	g.GET("/projections/bridge-reconciliation", admin, h.reconciliation)
}

func (h *Handler) start(kind string) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req Request
		if err := api.DecodeJSON(c, &req); err != nil {
			api.WriteError(c, err)
			return
		}
		p, _ := api.PrincipalFrom(c)
		k, err := ledger.KindOf(p.Subject)
		if err != nil || !ledger.IsUserKind(k) {
			api.WriteError(c, apperr.New(apperr.Forbidden, "the caller has no ledger account to send from"))
			return
		}
		if err := api.RequireFields(api.Field("frame", req.Frame), api.Field("to", req.To)); err != nil {
			api.WriteError(c, err)
			return
		}
		if req.AmountUnits == nil {
			api.WriteError(c, apperr.New(apperr.Invalid, "amount_units is required"))
			return
		}
		t, err := h.Service.Start(c.Request.Context(), bridge.Request{
			Kind: kind, Frame: req.Frame, From: p.Subject, To: req.To, AmountUnits: *req.AmountUnits,
			Key: api.IdempotencyKeyFrom(c),
		})
		if err != nil {
			api.WriteError(c, err)
			return
		}
		c.JSON(http.StatusAccepted, DTO(t))
	}
}

func (h *Handler) get(c *gin.Context) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		api.WriteError(c, apperr.New(apperr.Invalid, "transfer id is not a UUID"))
		return
	}
	t, err := h.Service.Get(c.Request.Context(), id)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	p, _ := api.PrincipalFrom(c)
	if !p.HasScope(api.ScopeAdmin) && p.Subject != t.Sender && p.Subject != t.Recipient {
		api.WriteError(c, apperr.New(apperr.NotFound, "bridge transfer %s not found", id))
		return
	}
	c.JSON(http.StatusOK, DTO(t))
}

func (h *Handler) reconciliation(c *gin.Context) {
	c.JSON(http.StatusOK, h.Service.Reconcile(c.Request.Context()))
}
