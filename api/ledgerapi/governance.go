package ledgerapi

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
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/proposals"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// VetoPolicy decides who may veto a passed proposal. OperatorVeto (one
// admin of the mainframe) is the policy today; an M-of-N council would
// implement it by checking a threshold signature carried by the request,
// with no change to the ledger or the workflow.
type VetoPolicy interface {
	MayVeto(ctx context.Context, p api.Principal) error
}

// OperatorVeto lets an admin of the frame's mainframe veto.
type OperatorVeto struct{ Mainframe bool }

// MayVeto implements VetoPolicy.
func (o OperatorVeto) MayVeto(_ context.Context, p api.Principal) error {
	if !o.Mainframe {
		return apperr.New(apperr.Forbidden, "only the mainframe's operator may veto; this registry is not the mainframe")
	}
	if !p.HasScope(api.ScopeAdmin) {
		return apperr.New(apperr.Forbidden, "vetoing needs the admin scope")
	}
	return nil
}

// GovernanceOptions configure a GovernanceHandler.
type GovernanceOptions struct {
	Store       *ledgerstore.Store // required
	Proposals   *proposals.Service // required
	Idempotency api.IdempotencyStore
	Auth        gin.HandlerFunc
	Veto        VetoPolicy // nil: OperatorVeto{false}, nobody may veto
	Now         func() time.Time
}

// GovernanceHandler serves the governance routes (SPEC §9).
type GovernanceHandler struct{ o GovernanceOptions }

// NewGovernance returns a GovernanceHandler; it panics on missing
// required options (a wiring bug).
func NewGovernance(o GovernanceOptions) *GovernanceHandler {
	if o.Store == nil || o.Proposals == nil || o.Idempotency == nil {
		panic("ledgerapi: governance needs Store, Proposals and Idempotency")
	}
	if o.Veto == nil {
		o.Veto = OperatorVeto{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &GovernanceHandler{o: o}
}

// Mount registers:
//
//	public:  GET /governance/lock-options, GET /governance/parameters
//	agent:   POST /governance/proposals, POST /governance/proposals/:id/vote,
//	         POST /governance/delegate
//	any:     GET /governance/power/:did, GET /governance/proposals,
//	         GET /governance/proposals/:id, GET /governance/proposals/:id/votes/:did
//	admin:   POST /governance/proposals/:id/veto (VetoPolicy)
func (h *GovernanceHandler) Mount(v1 *gin.RouterGroup) {
	v1.GET("/governance/lock-options", h.lockOptions)
	v1.GET("/governance/parameters", h.parameters)
	p := v1
	if h.o.Auth != nil {
		p = v1.Group("", h.o.Auth)
	}
	idem := api.Idempotency(h.o.Idempotency, true, h.o.Now)
	agent := api.RequireScope(api.ScopeAgent)
	anyScope := api.RequireScope(api.ScopeAgent, api.ScopeDeveloper, api.ScopeAdmin)
	p.GET("/governance/power/:did", anyScope, h.power)
	p.POST("/governance/proposals", agent, idem, h.propose)
	p.GET("/governance/proposals", anyScope, h.list)
	p.GET("/governance/proposals/:id", anyScope, h.get)
	p.POST("/governance/proposals/:id/vote", agent, idem, h.vote)
	p.GET("/governance/proposals/:id/votes/:did", anyScope, h.voteOf)
	p.POST("/governance/delegate", agent, idem, h.delegate)
	p.POST("/governance/proposals/:id/veto", anyScope, idem, h.veto)
}

// --- DTOs --------------------------------------------------------------------

// LockOptionResponse is one lock option.
type LockOptionResponse struct {
	Option        string `json:"option"`
	LockDays      int64  `json:"lock_days"`
	Multiplier    string `json:"multiplier"` // decimal, e.g. "0.019"
	MultiplierNum int64  `json:"multiplier_num"`
	MultiplierDen int64  `json:"multiplier_den"`
	StakingTier   bool   `json:"staking_tier"` // a stake can be placed in it today
}

// LockOptionsResponse is GET /governance/lock-options.
type LockOptionsResponse struct {
	Formula     string               `json:"formula"`
	TMaxDays    int64                `json:"t_max_days"`
	Options     []LockOptionResponse `json:"options"`
	SqrtGroupBy string               `json:"sqrt_group_by"` // voter
}

// ParametersResponse is GET /governance/parameters: the governed values in
// force.
type ParametersResponse struct {
	FeeCurve ledger.FeeCurve `json:"fee_curve"`
	// StakingPremiums is each staking tier's APY premium, in tier order.
	StakingPremiums []governance.StakingPremium `json:"staking_premiums"`
}

// PowerResponse is GET /governance/power/:did.
type PowerResponse struct {
	DID        string `json:"did"`
	Own        int64  `json:"own_power"`
	Received   int64  `json:"received_power"`
	Delegators int    `json:"delegators"`
	DelegateTo string `json:"delegate,omitempty"`
	Positions  int    `json:"positions"`
}

// ProposalRequest is the body of POST /governance/proposals.
type ProposalRequest struct {
	Title         string             `json:"title"`
	Body          string             `json:"body"`
	WindowSeconds int64              `json:"window_seconds"`
	QuorumBps     int64              `json:"quorum_bps"`
	ThresholdBps  int64              `json:"threshold_bps"`
	Change        *governance.Change `json:"change,omitempty"`
}

// TallyResponse is a proposal's recorded tally.
type TallyResponse struct {
	TalliedAt time.Time `json:"tallied_at"`
	Yes       int64     `json:"yes_power"`
	No        int64     `json:"no_power"`
	Abstain   int64     `json:"abstain_power"`
	Turnout   int64     `json:"turnout_power"`
	QuorumMet bool      `json:"quorum_met"`
	Passed    bool      `json:"passed"`
}

// ProposalResponse is a proposal.
type ProposalResponse struct {
	ID            uuid.UUID          `json:"id"`
	Proposer      string             `json:"proposer"`
	Title         string             `json:"title"`
	Body          string             `json:"body"`
	WindowSeconds int64              `json:"window_seconds"`
	QuorumBps     int64              `json:"quorum_bps"`
	ThresholdBps  int64              `json:"threshold_bps"`
	Change        *governance.Change `json:"change,omitempty"`
	State         string             `json:"state"`
	OpensAt       time.Time          `json:"opens_at"`
	ClosesAt      time.Time          `json:"closes_at"`
	Electorate    int64              `json:"electorate_power"`
	Voters        int                `json:"snapshot_voters"`
	VetoSeconds   int64              `json:"veto_window_seconds"`
	Tally         *TallyResponse     `json:"tally,omitempty"`
	EnactAfter    *time.Time         `json:"enact_after,omitempty"`
	EnactedAt     *time.Time         `json:"enacted_at,omitempty"`
	VetoedAt      *time.Time         `json:"vetoed_at,omitempty"`
	VetoActor     string             `json:"veto_actor,omitempty"`
	VetoReason    string             `json:"veto_reason,omitempty"`
	CreatedAt     time.Time          `json:"created_at"`
}

func proposalDTO(p ledgerstore.Proposal) ProposalResponse {
	r := ProposalResponse{
		ID: p.ID, Proposer: p.Proposer, Title: p.Title, Body: p.Body, WindowSeconds: int64(p.Window / time.Second),
		QuorumBps: p.QuorumBps, ThresholdBps: p.ThresholdBps, Change: p.Change, State: p.State, OpensAt: p.OpensAt,
		ClosesAt: p.ClosesAt, Electorate: p.Electorate, Voters: p.Voters, VetoSeconds: int64(p.VetoWindow / time.Second),
		EnactAfter: p.EnactAfter, EnactedAt: p.EnactedAt, VetoedAt: p.VetoedAt, VetoActor: p.VetoActor, VetoReason: p.VetoReason,
		CreatedAt: p.CreatedAt,
	}
	if t := p.Tally; t != nil {
		r.Tally = &TallyResponse{TalliedAt: t.At, Yes: t.Yes, No: t.No, Abstain: t.Abstain, Turnout: t.Yes + t.No + t.Abstain, QuorumMet: t.QuorumMet, Passed: t.Passed}
	}
	return r
}

// ProposalsResponse is a page of proposals, newest first.
type ProposalsResponse struct {
	Proposals []ProposalResponse `json:"proposals"`
	Next      string             `json:"next,omitempty"` // pass as ?before=
}

// VoteRequest is the body of POST /governance/proposals/:id/vote.
type VoteRequest struct {
	Choice string `json:"choice"` // yes, no, abstain
}

// VoteResponse is a direct vote with the voter's snapshot weight.
type VoteResponse struct {
	ProposalID    uuid.UUID `json:"proposal_id"`
	Voter         string    `json:"voter"`
	Choice        string    `json:"choice"`
	Version       int       `json:"version"`
	OwnPower      int64     `json:"own_power"`
	ReceivedPower int64     `json:"received_power"`
	CastAt        time.Time `json:"cast_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func voteDTO(v ledgerstore.Vote) VoteResponse {
	return VoteResponse{ProposalID: v.ProposalID, Voter: v.Voter, Choice: string(v.Choice), Version: v.Version,
		OwnPower: v.OwnPower, ReceivedPower: v.ReceivedPower, CastAt: v.CastAt, UpdatedAt: v.UpdatedAt}
}

// GovDelegateRequest is the body of POST /governance/delegate; an empty
// delegate revokes.
type GovDelegateRequest struct {
	Delegate *string `json:"delegate"`
}

// GovDelegationResponse is a delegation of voting power.
type GovDelegationResponse struct {
	Delegator string    `json:"delegator"`
	Delegate  string    `json:"delegate,omitempty"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// VetoRequest is the body of POST /governance/proposals/:id/veto.
type VetoRequest struct {
	Reason string `json:"reason"`
}

// --- handlers ----------------------------------------------------------------

func (h *GovernanceHandler) lockOptions(c *gin.Context) {
	out := LockOptionsResponse{Formula: "v = sqrt(x) * (t_lock - t_elapsed) / T_max", TMaxDays: int64(governance.TMax / (24 * time.Hour)), SqrtGroupBy: "voter"}
	for _, o := range governance.LockOptions {
		_, tierErr := staking.TierByID(o.Name)
		out.Options = append(out.Options, LockOptionResponse{
			Option: o.Name, LockDays: int64(o.Lock / (24 * time.Hour)), Multiplier: o.Multiplier(),
			MultiplierNum: o.MultNum, MultiplierDen: governance.MultiplierDen, StakingTier: tierErr == nil,
		})
	}
	c.JSON(http.StatusOK, out)
}

func (h *GovernanceHandler) parameters(c *gin.Context) {
	fc, err := h.o.Store.FeeCurve(c.Request.Context())
	if err != nil {
		api.WriteError(c, err)
		return
	}
	prems, err := h.o.Store.StakingPremiums(c.Request.Context())
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := ParametersResponse{FeeCurve: fc}
	for _, t := range staking.Tiers {
		p, ok := prems[t.ID]
		if !ok {
			p = t.PremiumBps
		}
		out.StakingPremiums = append(out.StakingPremiums, governance.StakingPremium{Tier: string(t.ID), PremiumBps: p})
	}
	c.JSON(http.StatusOK, out)
}

func (h *GovernanceHandler) power(c *gin.Context) {
	did := c.Param("did")
	if k, err := ledger.KindOf(did); err != nil || k != ledger.KindAgent {
		api.WriteError(c, apperr.New(apperr.Invalid, "%q is not an agent DID", clip(did)))
		return
	}
	p, err := h.o.Store.VotingPowerOf(c.Request.Context(), did)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, PowerResponse{DID: did, Own: p.Own, Received: p.Received, Delegators: p.Delegators, DelegateTo: p.Delegate, Positions: p.Positions})
}

func (h *GovernanceHandler) propose(c *gin.Context) {
	var req ProposalRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	// Bound before converting: a huge window_seconds would overflow a
	// time.Duration into an accepted value.
	if req.WindowSeconds <= 0 || req.WindowSeconds > int64(366*24*time.Hour/time.Second) {
		api.WriteError(c, apperr.New(apperr.Invalid, "window_seconds must be between %d and %d",
			int64(h.o.Proposals.Limits.MinWindow/time.Second), int64(h.o.Proposals.Limits.MaxWindow/time.Second)))
		return
	}
	p, err := h.o.Proposals.Propose(c.Request.Context(), principal(c).Subject, api.IdempotencyKeyFrom(c), governance.Draft{
		Title: req.Title, Body: req.Body, Window: time.Duration(req.WindowSeconds) * time.Second,
		QuorumBps: req.QuorumBps, ThresholdBps: req.ThresholdBps, Change: req.Change,
	})
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusCreated, proposalDTO(p))
}

func proposalIDParam(c *gin.Context) (uuid.UUID, bool) {
	s := c.Param("id")
	id, err := uuid.Parse(s)
	if err != nil || id.String() != s {
		api.WriteError(c, apperr.New(apperr.Invalid, "proposal id %q is not a canonical UUID", clip(s)))
		return uuid.Nil, false
	}
	return id, true
}

func (h *GovernanceHandler) get(c *gin.Context) {
	id, ok := proposalIDParam(c)
	if !ok {
		return
	}
	p, err := h.o.Store.Proposal(c.Request.Context(), id)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, proposalDTO(p))
}

func (h *GovernanceHandler) list(c *gin.Context) {
	state := c.Query("state")
	switch state {
	case "", governance.StateOpen, governance.StatePassed, governance.StateRejected, governance.StateEnacted, governance.StateVetoed:
	default:
		api.WriteError(c, apperr.New(apperr.Invalid, "state must be open, passed, rejected, enacted or vetoed"))
		return
	}
	limit := 50
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > ledgerstore.MaxProposalsPage {
			api.WriteError(c, apperr.New(apperr.Invalid, "limit must be 1..%d", ledgerstore.MaxProposalsPage))
			return
		}
		limit = n
	}
	var before *ledgerstore.Proposal
	if s := c.Query("before"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			api.WriteError(c, apperr.New(apperr.Invalid, "before must be a proposal id"))
			return
		}
		b, err := h.o.Store.Proposal(c.Request.Context(), id)
		if err != nil {
			api.WriteError(c, apperr.New(apperr.Invalid, "before names no proposal"))
			return
		}
		before = &b
	}
	ps, err := h.o.Store.Proposals(c.Request.Context(), state, before, limit)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := ProposalsResponse{Proposals: make([]ProposalResponse, 0, len(ps))}
	for _, p := range ps {
		out.Proposals = append(out.Proposals, proposalDTO(p))
	}
	if len(ps) == limit {
		out.Next = ps[len(ps)-1].ID.String()
	}
	c.JSON(http.StatusOK, out)
}

// voteParams reads a vote's proposal ID and choice, answering the error
// itself when either is bad (local and federation votes share it).
func voteParams(c *gin.Context) (uuid.UUID, governance.Choice, bool) {
	id, ok := proposalIDParam(c)
	if !ok {
		return uuid.UUID{}, "", false
	}
	var req VoteRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return uuid.UUID{}, "", false
	}
	choice, err := governance.ParseChoice(req.Choice)
	if err != nil {
		api.WriteError(c, apperr.New(apperr.Invalid, "%s", err.Error()))
		return uuid.UUID{}, "", false
	}
	return id, choice, true
}

func (h *GovernanceHandler) vote(c *gin.Context) {
	id, choice, ok := voteParams(c)
	if !ok {
		return
	}
	v, err := h.o.Store.CastVote(c.Request.Context(), id, principal(c).Subject, choice)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, voteDTO(v))
}

func (h *GovernanceHandler) voteOf(c *gin.Context) {
	id, ok := proposalIDParam(c)
	if !ok {
		return
	}
	v, err := h.o.Store.VoteOf(c.Request.Context(), id, c.Param("did"))
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, voteDTO(v))
}

func (h *GovernanceHandler) delegate(c *gin.Context) {
	var req GovDelegateRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	if req.Delegate == nil {
		api.WriteError(c, apperr.New(apperr.Invalid, `delegate is required ("" revokes)`))
		return
	}
	d, err := h.o.Store.DelegateVotingPower(c.Request.Context(), principal(c).Subject, *req.Delegate)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, GovDelegationResponse{Delegator: d.Delegator, Delegate: d.Delegate, Version: d.Version, UpdatedAt: d.UpdatedAt})
}

func (h *GovernanceHandler) veto(c *gin.Context) {
	id, ok := proposalIDParam(c)
	if !ok {
		return
	}
	p := principal(c)
	if err := h.o.Veto.MayVeto(c.Request.Context(), p); err != nil {
		api.WriteError(c, err)
		return
	}
	var req VetoRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	out, err := h.o.Store.VetoProposal(c.Request.Context(), id, p.Subject, req.Reason)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, proposalDTO(out))
}
