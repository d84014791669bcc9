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
)

// Elevator elevates a passed local proposal to the federation
// (fedgov.Service).
type Elevator interface {
	Elevate(ctx context.Context, actor string, local uuid.UUID, window time.Duration) (ledgerstore.Proposal, error)
}

// FederationOptions configure a FederationHandler.
type FederationOptions struct {
	Store       *ledgerstore.Store // required
	Elevator    Elevator           // required
	Idempotency api.IdempotencyStore
	Auth        gin.HandlerFunc
	Veto        VetoPolicy // nil: nobody may veto
	Now         func() time.Time
}

// FederationHandler serves the federation tier's public routes.
type FederationHandler struct{ o FederationOptions }

// NewFederation returns a FederationHandler; it panics on missing
// required options (a wiring bug).
func NewFederation(o FederationOptions) *FederationHandler {
	if o.Store == nil || o.Elevator == nil || o.Idempotency == nil {
		panic("ledgerapi: the federation tier needs Store, Elevator and Idempotency")
	}
	if o.Veto == nil {
		o.Veto = OperatorVeto{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &FederationHandler{o: o}
}

// Mount registers:
//
//	agent: POST /governance/federation/propose,
//	       POST /governance/federation/proposals/:id/vote
//	any:   GET  /governance/federation/proposals/:id
//	admin: POST /governance/federation/proposals/:id/veto (VetoPolicy)
func (h *FederationHandler) Mount(v1 *gin.RouterGroup) {
	p := v1
	if h.o.Auth != nil {
		p = v1.Group("", h.o.Auth)
	}
	idem := api.Idempotency(h.o.Idempotency, true, h.o.Now)
	agent := api.RequireScope(api.ScopeAgent)
	anyScope := api.RequireScope(api.ScopeAgent, api.ScopeDeveloper, api.ScopeAdmin)
	p.POST("/governance/federation/propose", agent, idem, h.propose)
	p.GET("/governance/federation/proposals/:id", anyScope, h.get)
	p.POST("/governance/federation/proposals/:id/vote", agent, idem, h.vote)
	p.POST("/governance/federation/proposals/:id/veto", anyScope, idem, h.veto)
}

// ElevateRequest is the body of POST /governance/federation/propose.
type ElevateRequest struct {
	ProposalID    string `json:"proposal_id"` // the passed local proposal
	WindowSeconds int64  `json:"window_seconds"`
}

// FederationPeerResponse is a registry the origin expects a tally from.
type FederationPeerResponse struct {
	Registry    string     `json:"registry"`
	Via         string     `json:"via"` // frame or bridge
	AnnouncedAt *time.Time `json:"announced_at,omitempty"`
}

// LocalTallyResponse is one registry's signed local tally.
type LocalTallyResponse struct {
	Registry   string    `json:"registry"`
	Electorate int64     `json:"electorate_power"`
	Yes        int64     `json:"yes_power"`
	No         int64     `json:"no_power"`
	Abstain    int64     `json:"abstain_power"`
	TalliedAt  time.Time `json:"tallied_at"`
	Signature  []byte    `json:"signature"`
	PublicKey  []byte    `json:"public_key"`
}

// FederationResponse is a federation proposal's federation side.
type FederationResponse struct {
	Role            string                   `json:"role"` // origin or peer
	OriginRegistry  string                   `json:"origin_registry"`
	OriginFrame     string                   `json:"origin_frame"`
	LocalProposal   *uuid.UUID               `json:"local_proposal,omitempty"`
	CollectUntil    time.Time                `json:"collect_until"`
	TotalElectorate *int64                   `json:"total_electorate_power,omitempty"`
	Counted         []string                 `json:"counted,omitempty"`
	Missing         []string                 `json:"missing,omitempty"`
	Peers           []FederationPeerResponse `json:"peers,omitempty"`
	Tallies         []LocalTallyResponse     `json:"tallies,omitempty"`
}

// FederationProposalResponse is a federation proposal as this registry
// holds it.
type FederationProposalResponse struct {
	ProposalResponse
	Federation FederationResponse `json:"federation"`
}

func federationDTO(p ledgerstore.Proposal, f ledgerstore.Federation) FederationProposalResponse {
	out := FederationProposalResponse{ProposalResponse: proposalDTO(p), Federation: FederationResponse{
		Role: f.Role, OriginRegistry: f.OriginRegistry, OriginFrame: f.OriginFrame, LocalProposal: f.LocalProposal,
		CollectUntil: f.CollectUntil, TotalElectorate: f.TotalElectorate, Counted: f.Counted, Missing: f.Missing,
	}}
	for _, peer := range f.Peers {
		out.Federation.Peers = append(out.Federation.Peers, FederationPeerResponse{Registry: peer.Registry, Via: peer.Via, AnnouncedAt: peer.AnnouncedAt})
	}
	for _, t := range f.Tallies {
		out.Federation.Tallies = append(out.Federation.Tallies, LocalTallyResponse{
			Registry: t.Tally.Registry, Electorate: t.Tally.Electorate, Yes: t.Tally.Yes, No: t.Tally.No, Abstain: t.Tally.Abstain,
			TalliedAt: t.Tally.TalliedAt, Signature: t.Signature, PublicKey: f.TallyKeys[t.Tally.Registry],
		})
	}
	return out
}

func (h *FederationHandler) respond(c *gin.Context, status int, p ledgerstore.Proposal) {
	f, err := h.o.Store.FederationOf(c.Request.Context(), p.ID)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(status, federationDTO(p, f))
}

func (h *FederationHandler) propose(c *gin.Context) {
	var req ElevateRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	local, err := uuid.Parse(req.ProposalID)
	if err != nil || local.String() != req.ProposalID {
		api.WriteError(c, apperr.New(apperr.Invalid, "proposal_id must be a local proposal's canonical UUID"))
		return
	}
	// Bound before converting: a huge value would overflow a Duration.
	if req.WindowSeconds <= 0 || req.WindowSeconds > int64(366*24*time.Hour/time.Second) {
		api.WriteError(c, apperr.New(apperr.Invalid, "window_seconds out of range"))
		return
	}
	p, err := h.o.Elevator.Elevate(c.Request.Context(), principal(c).Subject, local, time.Duration(req.WindowSeconds)*time.Second)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	h.respond(c, http.StatusCreated, p)
}

func (h *FederationHandler) get(c *gin.Context) {
	id, ok := proposalIDParam(c)
	if !ok {
		return
	}
	p, err := h.o.Store.Proposal(c.Request.Context(), id)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	h.respond(c, http.StatusOK, p)
}

func (h *FederationHandler) vote(c *gin.Context) {
	id, choice, ok := voteParams(c)
	if !ok {
		return
	}
	v, err := h.o.Store.CastFederationVote(c.Request.Context(), id, principal(c).Subject, choice)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, voteDTO(v))
}

// veto stops a passed federation proposal this registry originated before
// it is enacted; the VetoPolicy (the mainframe's operator today) decides
// who may.
func (h *FederationHandler) veto(c *gin.Context) {
	id, ok := proposalIDParam(c)
	if !ok {
		return
	}
	pr := principal(c)
	if err := h.o.Veto.MayVeto(c.Request.Context(), pr); err != nil {
		api.WriteError(c, err)
		return
	}
	var req VetoRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	f, err := h.o.Store.FederationOf(c.Request.Context(), id)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	if f.Role != ledgerstore.FederationOrigin {
		api.WriteError(c, apperr.New(apperr.FailedPrecondition, "federation proposal %s is decided at its origin %s", id, f.OriginRegistry))
		return
	}
	p, err := h.o.Store.VetoProposal(c.Request.Context(), id, pr.Subject, req.Reason)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	h.respond(c, http.StatusOK, p)
}
