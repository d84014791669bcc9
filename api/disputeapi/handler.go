// Package disputeapi serves the dispute routes (SPEC §8, §9): an agent
// opens a dispute against a transfer it was party to, the counterparty
// answers, an admin of the registry (the tribunal) rules. The flow itself
// is package disputes; the rules are package dispute.
package disputeapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/dispute"
	"github.com/theprotocol-dev/theprotocol/money"
)

// Flow is the dispute flow (*disputes.Service).
type Flow interface {
	Open(ctx context.Context, req ledgerstore.OpenDisputeRequest) (ledgerstore.Dispute, error)
	Respond(ctx context.Context, id uuid.UUID, respondent, responseRef string) (ledgerstore.Dispute, error)
	Rule(ctx context.Context, req ledgerstore.RulingRequest) (ledgerstore.Dispute, error)
	Get(ctx context.Context, id uuid.UUID) (ledgerstore.Dispute, error)
	List(ctx context.Context, party string, after uuid.UUID, limit int) ([]ledgerstore.Dispute, error)
}

// Options configure a Handler.
type Options struct {
	Flow        Flow                 // required
	Idempotency api.IdempotencyStore // required
	Auth        gin.HandlerFunc
	Now         func() time.Time
}

// Handler serves the dispute routes.
type Handler struct{ o Options }

// New returns a Handler; it panics on missing required options (a wiring
// bug).
func New(o Options) *Handler {
	if o.Flow == nil || o.Idempotency == nil {
		panic("disputeapi: Flow and Idempotency are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{o: o}
}

// Mount registers:
//
//	agent: POST /disputes, POST /disputes/:id/response
//	admin: POST /admin/disputes/:id/ruling
//	any:   GET /disputes, GET /disputes/:id (parties and admins)
func (h *Handler) Mount(v1 *gin.RouterGroup) {
	p := v1
	if h.o.Auth != nil {
		p = v1.Group("", h.o.Auth)
	}
	idem := api.Idempotency(h.o.Idempotency, true, h.o.Now)
	agent := api.RequireScope(api.ScopeAgent)
	admin := api.RequireScope(api.ScopeAdmin)
	anyScope := api.RequireScope(api.ScopeAgent, api.ScopeDeveloper, api.ScopeAdmin)
	p.POST("/disputes", agent, idem, h.open)
	p.POST("/disputes/:id/response", agent, idem, h.respond)
	p.POST("/admin/disputes/:id/ruling", admin, idem, h.rule)
	p.GET("/disputes", anyScope, h.list)
	p.GET("/disputes/:id", anyScope, h.get)
}

// OpenRequest is the body of POST /disputes.
type OpenRequest struct {
	TransferID   string `json:"transfer_id"`
	ClaimedUnits int64  `json:"claimed_units"` // ≤ the transfer's amount
	EvidenceRef  string `json:"evidence_ref"`  // a reference (URL, hash) to the evidence
}

// ResponseRequest is the body of POST /disputes/:id/response.
type ResponseRequest struct {
	ResponseRef string `json:"response_ref"`
}

// RulingRequest is the body of POST /admin/disputes/:id/ruling.
type RulingRequest struct {
	Outcome    string `json:"outcome"`               // "complainant" or "respondent"
	AwardUnits int64  `json:"award_units,omitempty"` // for the complainant: 1..claimed (default: the claim)
	Reason     string `json:"reason"`
}

// DisputeResponse is a dispute.
type DisputeResponse struct {
	ID                string     `json:"id"`
	TransferID        string     `json:"transfer_id"`
	Complainant       string     `json:"complainant"`
	Respondent        string     `json:"respondent"`
	ClaimedUnits      int64      `json:"claimed_units"`
	Claimed           string     `json:"claimed"`
	EvidenceRef       string     `json:"evidence_ref"`
	Status            string     `json:"status"`
	RespondBy         time.Time  `json:"respond_by"`
	RuleBy            time.Time  `json:"rule_by"`
	FeeDueUnits       int64      `json:"fee_due_units"` // charged to the complainant if the ruling goes against them
	ResponseRef       string     `json:"response_ref,omitempty"`
	RespondedAt       *time.Time `json:"responded_at,omitempty"`
	Defaulted         bool       `json:"respondent_defaulted"`
	Outcome           string     `json:"outcome,omitempty"`
	Winner            string     `json:"winner,omitempty"`
	Loser             string     `json:"loser,omitempty"`
	AwardUnits        int64      `json:"award_units"`
	RulingReason      string     `json:"ruling_reason,omitempty"`
	RuledAt           *time.Time `json:"ruled_at,omitempty"`
	CompensationUnits int64      `json:"compensation_units"`
	FeeUnits          int64      `json:"fee_units"`
	SettledAt         *time.Time `json:"settled_at,omitempty"`
	LapsedAt          *time.Time `json:"lapsed_at,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
}

func dto(d ledgerstore.Dispute) DisputeResponse {
	return DisputeResponse{
		ID: d.ID.String(), TransferID: d.TransferID.String(), Complainant: d.Complainant, Respondent: d.Respondent,
		ClaimedUnits: d.ClaimedUnits, Claimed: money.Format(d.ClaimedUnits), EvidenceRef: d.EvidenceRef, Status: string(d.Status),
		RespondBy: d.RespondBy, RuleBy: d.RuleBy, FeeDueUnits: d.FeeDueUnits, ResponseRef: d.ResponseRef, RespondedAt: d.RespondedAt,
		Defaulted: d.Defaulted, Outcome: string(d.Outcome), Winner: d.Winner(), Loser: d.Loser(), AwardUnits: d.AwardUnits,
		RulingReason: d.RulingReason, RuledAt: d.RuledAt, CompensationUnits: d.CompensationUnits, FeeUnits: d.FeeUnits,
		SettledAt: d.SettledAt, LapsedAt: d.LapsedAt, CreatedAt: d.CreatedAt,
	}
}

func principal(c *gin.Context) api.Principal {
	p, _ := api.PrincipalFrom(c) // RequireScope ran first
	return p
}

func parseID(name, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return uuid.Nil, apperr.New(apperr.Invalid, "%s %q is not a UUID", name, s)
	}
	return id, nil
}

// open: 201 with the dispute. A 503 (the workflow did not start) is not
// stored by the idempotency layer: a retry with the same key replays the
// dispute and starts it.
func (h *Handler) open(c *gin.Context) {
	var req OpenRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	if err := api.RequireFields(api.Field("transfer_id", req.TransferID), api.Field("evidence_ref", req.EvidenceRef)); err != nil {
		api.WriteError(c, err)
		return
	}
	tid, err := parseID("transfer_id", req.TransferID)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	d, err := h.o.Flow.Open(c.Request.Context(), ledgerstore.OpenDisputeRequest{
		Complainant: principal(c).Subject, TransferID: tid, ClaimedUnits: req.ClaimedUnits, EvidenceRef: req.EvidenceRef,
		IdempotencyKey: api.IdempotencyKeyFrom(c),
	})
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusCreated, dto(d))
}

func (h *Handler) respond(c *gin.Context) {
	id, err := parseID("dispute id", c.Param("id"))
	if err != nil {
		api.WriteError(c, err)
		return
	}
	var req ResponseRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	if err := api.RequireFields(api.Field("response_ref", req.ResponseRef)); err != nil {
		api.WriteError(c, err)
		return
	}
	d, err := h.o.Flow.Respond(c.Request.Context(), id, principal(c).Subject, req.ResponseRef)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, dto(d))
}

func (h *Handler) rule(c *gin.Context) {
	id, err := parseID("dispute id", c.Param("id"))
	if err != nil {
		api.WriteError(c, err)
		return
	}
	var req RulingRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	if err := api.RequireFields(api.Field("outcome", req.Outcome), api.Field("reason", req.Reason)); err != nil {
		api.WriteError(c, err)
		return
	}
	o, err := dispute.ParseOutcome(req.Outcome)
	if err != nil {
		api.WriteError(c, apperr.New(apperr.Invalid, "%s", err.Error()))
		return
	}
	d, err := h.o.Flow.Rule(c.Request.Context(), ledgerstore.RulingRequest{
		DisputeID: id, Outcome: o, AwardUnits: req.AwardUnits, Reason: req.Reason, Actor: principal(c).Subject,
	})
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, dto(d))
}

// get answers the dispute to its parties and admins; to anyone else it
// does not exist.
func (h *Handler) get(c *gin.Context) {
	id, err := parseID("dispute id", c.Param("id"))
	if err != nil {
		api.WriteError(c, err)
		return
	}
	d, err := h.o.Flow.Get(c.Request.Context(), id)
	if p := principal(c); err == nil && !p.HasScope(api.ScopeAdmin) && p.Subject != d.Complainant && p.Subject != d.Respondent {
		err = apperr.New(apperr.NotFound, "dispute %s not found", id)
	}
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, dto(d))
}

// list pages the caller's disputes (as complainant or respondent); an
// admin lists ?agent='s, or every dispute. ?after= is the last id of the
// previous page, ?limit= at most ledgerstore.MaxDisputePage.
func (h *Handler) list(c *gin.Context) {
	p := principal(c)
	party := p.Subject
	if p.HasScope(api.ScopeAdmin) {
		party = c.Query("agent")
	} else if a := c.Query("agent"); a != "" && a != p.Subject {
		api.WriteError(c, apperr.New(apperr.Forbidden, "the caller may list only its own disputes"))
		return
	}
	var after uuid.UUID
	if s := c.Query("after"); s != "" {
		var err error
		if after, err = parseID("after", s); err != nil {
			api.WriteError(c, err)
			return
		}
	}
	limit := 0
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			api.WriteError(c, apperr.New(apperr.Invalid, "limit must be a non-negative integer"))
			return
		}
		limit = n
	}
	ds, err := h.o.Flow.List(c.Request.Context(), party, after, limit)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := struct {
		Disputes []DisputeResponse `json:"disputes"`
	}{Disputes: make([]DisputeResponse, len(ds))}
	for i, d := range ds {
		out.Disputes[i] = dto(d)
	}
	c.JSON(http.StatusOK, out)
}
