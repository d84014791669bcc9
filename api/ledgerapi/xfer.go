package ledgerapi

import (
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

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
