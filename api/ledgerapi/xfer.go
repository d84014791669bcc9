package ledgerapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// CrossRegistry starts cross-registry transfers (SPEC §6.1): a receiver
// that has no account on this registry but lives on a peer registry of the
// frame is paid through a settlement saga.
type CrossRegistry interface {
	// Home returns the peer registry where account lives ("" when none).
	Home(ctx context.Context, account string) (string, error)
	// Begin reserves the amount (hold) and records the transfer as
	// pending, then hands it to the settlement batcher.
	Begin(ctx context.Context, r ledgerstore.XferRequest) (ledgerstore.Xfer, error)
}

// XferResponse is a cross-registry transfer (202 on POST /transfers, then
// GET /transfers/{id} until status is committed or aborted).
type XferResponse struct {
	ID             uuid.UUID `json:"id"`
	Status         string    `json:"status"` // pending, committing, committed, aborting (hold kept until the target acknowledged the abort), aborted
	From           string    `json:"from"`
	To             string    `json:"to"`
	TargetRegistry string    `json:"target_registry"`
	AmountUnits    int64     `json:"amount_units"`
	Amount         string    `json:"amount"`
	FeeUnits       int64     `json:"fee_units"`
	NetUnits       int64     `json:"net_units,omitempty"` // once committed
	Memo           string    `json:"memo,omitempty"`
	Reason         string    `json:"reason,omitempty"` // why it aborts or aborted
	HoldID         uuid.UUID `json:"hold_id"`
	SettlementID   string    `json:"settlement_workflow_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// XferDTO converts a stored cross-registry transfer.
func XferDTO(x ledgerstore.Xfer) XferResponse {
	out := XferResponse{
		ID: x.ID, Status: string(x.Status), From: x.From, To: x.To, TargetRegistry: x.Target,
		AmountUnits: x.AmountUnits, Amount: money.Format(x.AmountUnits), FeeUnits: x.FeeUnits, Memo: x.Memo,
		Reason: x.Reason, HoldID: x.HoldID, SettlementID: x.WorkflowID, CreatedAt: x.CreatedAt, UpdatedAt: x.UpdatedAt,
	}
	if x.Status == xferstate.Committed {
		out.NetUnits = x.AmountUnits - x.FeeUnits
	}
	return out
}

// crossTransfer is tried when an intra-registry transfer failed with
// NotFound: if the receiver is an agent with no account here whose home is
// a peer registry, the transfer is accepted as cross-registry (202). ok is
// false when the receiver is not remote (the caller reports the original
// error).
func (h *Handler) crossTransfer(c *gin.Context, from, to string, amount int64, memo string) (ok bool) {
	if h.o.Cross == nil {
		return false
	}
	if k, err := ledger.KindOf(to); err != nil || k != ledger.KindAgent {
		return false
	}
	ctx := c.Request.Context()
	if local, err := h.o.Store.AccountExists(ctx, to); err != nil || local {
		return false
	}
	home, err := h.o.Cross.Home(ctx, to)
	if err != nil {
		api.WriteError(c, err)
		return true
	}
	if home == "" {
		return false
	}
	x, err := h.o.Cross.Begin(ctx, ledgerstore.XferRequest{
		From: from, To: to, Target: home, AmountUnits: amount, Memo: memo, IdempotencyKey: api.IdempotencyKeyFrom(c),
	})
	if err != nil {
		api.WriteError(c, err)
		return true
	}
	c.JSON(http.StatusAccepted, XferDTO(x))
	return true
}

// getXfer answers GET /transfers/{id} for a cross-registry transfer; ok is
// false when id is not one.
func (h *Handler) getXfer(c *gin.Context, id uuid.UUID) (ok bool) {
	x, err := h.o.Store.GetXfer(c.Request.Context(), id)
	if apperr.Is(err, apperr.NotFound) {
		return false
	}
	if err == nil {
		var vis bool
		if vis, err = h.visible(c, x.From, x.To); err == nil && !vis {
			err = apperr.New(apperr.NotFound, "transfer %s not found", id)
		}
	}
	if err != nil {
		api.WriteError(c, err)
		return true
	}
	c.JSON(http.StatusOK, XferDTO(x))
	return true
}

// notXferHold refuses (422) to post or void by hand the hold of a
// cross-registry transfer: only its settlement saga decides it (a hand-made
// post would move the funds to transit without the target ever crediting
// them).
func notXferHold(c *gin.Context, h ledgerstore.Hold) bool {
	if h.CrossRegistry() {
		api.WriteError(c, apperr.New(apperr.FailedPrecondition, "hold %s belongs to a cross-registry transfer; its settlement decides it", h.ID))
		return false
	}
	return true
}
