// Package sagaapi is the operators' view of cross-registry settlement
// sagas (SPEC §6.1): list sagas by SagaState through Temporal visibility,
// signal a parked saga to retry its compensation, and find the settlement
// workflow of a transfer with a link into the Temporal UI. Admin scope only.
package sagaapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// Limits.
const (
	MaxPageSize     = 100
	DefaultPageSize = 50
)

// XferGetter reads cross-registry transfers (*ledgerstore.Store).
type XferGetter interface {
	GetXfer(ctx context.Context, id uuid.UUID) (ledgerstore.Xfer, error)
}

// Handler serves the admin saga routes.
type Handler struct {
	Temporal  client.Client
	Namespace string
	// UIBase is the Temporal Web UI (e.g. http://127.0.0.1:8233).
	UIBase string
	Xfers  XferGetter
	Idem   api.IdempotencyStore
	Auth   gin.HandlerFunc
	Now    func() time.Time
}

// Mount registers, on the /api/v1 group:
//
//	GET  /admin/sagas?state=CompensationFailed[&limit=&cursor=]
//	POST /admin/sagas/:id/replay
//	GET  /admin/transfers/:id
func (h *Handler) Mount(v1 *gin.RouterGroup) {
	g := v1
	if h.Auth != nil {
		g = v1.Group("", h.Auth)
	}
	now := h.Now
	if now == nil {
		now = time.Now
	}
	admin := api.RequireScope(api.ScopeAdmin)
	g.GET("/admin/sagas", admin, h.list)
	g.POST("/admin/sagas/:id/replay", admin, api.Idempotency(h.Idem, true, now), h.replay)
	g.GET("/admin/transfers/:id", admin, h.transfer)
}

// Saga is one settlement workflow as visibility reports it.
type Saga struct {
	WorkflowID     string    `json:"workflow_id"`
	RunID          string    `json:"run_id"`
	SagaState      string    `json:"saga_state"`
	SourceRegistry string    `json:"source_registry,omitempty"`
	TargetRegistry string    `json:"target_registry,omitempty"`
	TransferIDs    []string  `json:"transfer_ids,omitempty"`
	SourceFrame    string    `json:"source_frame,omitempty"` // bridge sagas
	TargetFrame    string    `json:"target_frame,omitempty"`
	Status         string    `json:"status"`
	StartedAt      time.Time `json:"started_at"`
	UIURL          string    `json:"ui_url,omitempty"`
}

// SagaPage is GET /admin/sagas.
type SagaPage struct {
	Sagas      []Saga `json:"sagas"`
	NextCursor string `json:"next_cursor,omitempty"`
}

var sagaStates = map[string]bool{
	workflows.SagaPreparing: true, workflows.SagaCommitting: true, workflows.SagaCommitStalled: true,
	workflows.SagaCommitted: true, workflows.SagaAborted: true, workflows.SagaCompensationFailed: true,
	workflows.SagaDelivering: true, workflows.SagaOutcomeUnknown: true, workflows.SagaCompleted: true, workflows.SagaRefunded: true,
}

// Query is the visibility query for settlement and bridge sagas in state
// ("" = all).
func Query(state string) string {
	q := fmt.Sprintf("WorkflowType IN ('%s', '%s', '%s')", workflows.SettlementWorkflowName,
		workflows.BridgeTransferWorkflowName, workflows.BridgeRedemptionWorkflowName)
	if state != "" {
		q += fmt.Sprintf(" AND SagaState = '%s'", state)
	}
	return q
}

func (h *Handler) list(c *gin.Context) {
	state := c.Query("state")
	if state != "" && !sagaStates[state] {
		api.WriteError(c, apperr.New(apperr.Invalid, "state must be one of Preparing, Committing, CommitStalled, Committed, Aborted, CompensationFailed, Delivering, OutcomeUnknown, Completed, Refunded"))
		return
	}
	limit := DefaultPageSize
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			api.WriteError(c, apperr.New(apperr.Invalid, "limit must be a positive integer (at most %d)", MaxPageSize))
			return
		}
		limit = min(n, MaxPageSize)
	}
	var token []byte
	if s := c.Query("cursor"); s != "" {
		var err error
		if token, err = base64.RawURLEncoding.DecodeString(s); err != nil {
			api.WriteError(c, apperr.New(apperr.Invalid, "cursor is not one returned by this endpoint"))
			return
		}
	}
	resp, err := h.Temporal.ListWorkflow(c.Request.Context(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: h.Namespace, PageSize: int32(limit), NextPageToken: token, Query: Query(state),
	})
	if err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "Temporal visibility is unavailable"))
		return
	}
	out := SagaPage{Sagas: make([]Saga, 0, len(resp.GetExecutions()))}
	dc := converter.GetDefaultDataConverter()
	for _, e := range resp.GetExecutions() {
		s := Saga{
			WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
			Status: e.GetStatus().String(), StartedAt: e.GetStartTime().AsTime(),
		}
		fields := e.GetSearchAttributes().GetIndexedFields()
		_ = dc.FromPayload(fields["SagaState"], &s.SagaState)
		_ = dc.FromPayload(fields["SourceRegistry"], &s.SourceRegistry)
		_ = dc.FromPayload(fields["TargetRegistry"], &s.TargetRegistry)
		_ = dc.FromPayload(fields["TransferIDs"], &s.TransferIDs)
		_ = dc.FromPayload(fields["SourceFrame"], &s.SourceFrame)
		_ = dc.FromPayload(fields["TargetFrame"], &s.TargetFrame)
		s.UIURL = h.uiURL(s.WorkflowID)
		out.Sagas = append(out.Sagas, s)
	}
	if len(resp.GetNextPageToken()) > 0 {
		out.NextCursor = base64.RawURLEncoding.EncodeToString(resp.GetNextPageToken())
	}
	c.JSON(http.StatusOK, out)
}

var workflowIDPattern = regexp.MustCompile(`^(xsettle|bridge)-[A-Za-z0-9._:-]{1,250}$`)

// ReplayResponse is POST /admin/sagas/{id}/replay.
type ReplayResponse struct {
	WorkflowID string `json:"workflow_id"`
	Signalled  string `json:"signalled"`
}

func (h *Handler) replay(c *gin.Context) {
	id := c.Param("id")
	if !workflowIDPattern.MatchString(id) {
		api.WriteError(c, apperr.New(apperr.Invalid, "%q is not a saga workflow ID (xsettle-… or bridge-…)", clip(id)))
		return
	}
	err := h.Temporal.SignalWorkflow(c.Request.Context(), id, "", workflows.SignalSagaReplay, nil)
	var nf *serviceerror.NotFound
	switch {
	case err == nil:
	case errors.As(err, &nf):
		api.WriteError(c, apperr.New(apperr.NotFound, "no running saga %s", id))
		return
	default:
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "Temporal is unavailable"))
		return
	}
	c.JSON(http.StatusOK, ReplayResponse{WorkflowID: id, Signalled: workflows.SignalSagaReplay})
}

// TransferSaga is GET /admin/transfers/{id}.
type TransferSaga struct {
	TransferID   uuid.UUID `json:"transfer_id"`
	Status       string    `json:"status"`
	Target       string    `json:"target_registry"`
	SettlementID string    `json:"settlement_workflow_id,omitempty"`
	UIURL        string    `json:"temporal_ui_url,omitempty"`
	Reason       string    `json:"reason,omitempty"`
}

func (h *Handler) transfer(c *gin.Context) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		api.WriteError(c, apperr.New(apperr.Invalid, "transfer id %q is not a UUID", clip(c.Param("id"))))
		return
	}
	x, err := h.Xfers.GetXfer(c.Request.Context(), id)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := TransferSaga{TransferID: x.ID, Status: string(x.Status), Target: x.Target, SettlementID: x.WorkflowID, Reason: x.Reason}
	if x.WorkflowID != "" {
		out.UIURL = h.uiURL(x.WorkflowID)
	}
	c.JSON(http.StatusOK, out)
}

func (h *Handler) uiURL(workflowID string) string {
	if h.UIBase == "" {
		return ""
	}
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", h.UIBase, url.PathEscape(h.Namespace), url.PathEscape(workflowID))
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
