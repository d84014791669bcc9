package ledgerapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/recon"
)

// CheckpointResponse is POST /admin/checkpoints: the balance checkpoint
// just written to the outbox. The EventStore compares it with its own
// projection of this registry once it has the events it covers.
type CheckpointResponse struct {
	CoversSeq int64         `json:"covers_seq"`
	TakenAt   time.Time     `json:"taken_at"`
	Summary   recon.Summary `json:"summary"`
}

// checkpoint writes a balance checkpoint on demand (an operator checking
// a repair, or a test), besides the scheduled ones.
func (h *Handler) checkpoint(c *gin.Context) {
	cp, err := h.o.Store.WriteCheckpoint(c.Request.Context())
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusCreated, CheckpointResponse{CoversSeq: cp.CoversSeq, TakenAt: cp.TakenAt, Summary: cp.Summary})
}
