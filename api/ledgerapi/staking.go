package ledgerapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/stakes"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// StakingOptions configure a StakingHandler.
type StakingOptions struct {
	Store       *ledgerstore.Store // required
	Idempotency api.IdempotencyStore
	// Stakes stakes and unstakes, starting the workflows that finish
	// them (required).
	Stakes *stakes.Service
	Auth   gin.HandlerFunc
	Owner  OwnerFunc
	Curve  staking.Curve // zero: staking.DefaultCurve
	Now    func() time.Time
}

// StakingHandler serves the staking routes (SPEC §9).
type StakingHandler struct{ o StakingOptions }

// NewStaking returns a StakingHandler; it panics on missing required
// options (a wiring bug).
func NewStaking(o StakingOptions) *StakingHandler {
	if o.Store == nil || o.Idempotency == nil || o.Stakes == nil {
		panic("ledgerapi: staking needs Store, Idempotency and Stakes")
	}
	if o.Owner == nil {
		o.Owner = func(_ context.Context, p api.Principal, account string) (bool, error) {
			return p.Subject == account, nil
		}
	}
	if o.Curve == (staking.Curve{}) {
		o.Curve = staking.DefaultCurve
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &StakingHandler{o: o}
}

// Mount registers:
//
//	public:  GET /staking/apy-tiers
//	agent:   POST /staking/stake, POST /staking/positions/:id/unstake,
//	         POST /staking/positions/:id/delegate, POST /staking/validator
//	any:     GET /staking/positions, GET /staking/positions/:id,
//	         GET /staking/unstake-requests, GET /staking/validators, GET /staking/rewards
//	admin:   POST /admin/enforcement/agents/:did/slash-stake
func (h *StakingHandler) Mount(v1 *gin.RouterGroup) {
	v1.GET("/staking/apy-tiers", h.apyTiers)
	p := v1
	if h.o.Auth != nil {
		p = v1.Group("", h.o.Auth)
	}
	idem := api.Idempotency(h.o.Idempotency, true, h.o.Now)
	agent := api.RequireScope(api.ScopeAgent)
	anyScope := api.RequireScope(api.ScopeAgent, api.ScopeDeveloper, api.ScopeAdmin)
	admin := api.RequireScope(api.ScopeAdmin)
	p.POST("/staking/stake", agent, idem, h.stake)
	p.GET("/staking/positions", anyScope, h.positions)
	p.GET("/staking/positions/:id", anyScope, h.position)
	p.POST("/staking/positions/:id/unstake", agent, idem, h.unstake)
	p.POST("/staking/positions/:id/delegate", agent, idem, h.delegate)
	p.GET("/staking/unstake-requests", anyScope, h.unstakeRequests)
	p.POST("/staking/validator", agent, idem, h.setValidator)
	p.GET("/staking/validators", anyScope, h.validators)
	p.GET("/staking/rewards", anyScope, h.rewards)
	p.POST("/admin/enforcement/agents/:did/slash-stake", admin, idem, h.slash)
}

// --- DTOs --------------------------------------------------------------------

// StakeRequest is the body of POST /staking/stake.
type StakeRequest struct {
	Tier         string `json:"tier"` // flexible, 30d, 90d, 180d, 365d
	AmountUnits  *int64 `json:"amount_units,omitempty"`
	Amount       string `json:"amount,omitempty"`
	AutoCompound bool   `json:"auto_compound,omitempty"`
	Validator    string `json:"validator,omitempty"`
}

// PositionResponse is a stake position.
type PositionResponse struct {
	ID             int64      `json:"id"`
	Owner          string     `json:"owner"`
	Tier           string     `json:"tier"`
	PrincipalUnits int64      `json:"principal_units"`
	Principal      string     `json:"principal"`
	StakedUnits    int64      `json:"staked_units"`
	AutoCompound   bool       `json:"auto_compound"`
	Validator      string     `json:"validator,omitempty"`
	Status         string     `json:"status"`
	UnlockAt       *time.Time `json:"unlock_at,omitempty"`
	MaturedAt      *time.Time `json:"matured_at,omitempty"` // the lock expired: unstaking is immediate
	CreatedAt      time.Time  `json:"created_at"`
	ClosedAt       *time.Time `json:"closed_at,omitempty"`
}

func positionDTO(p ledgerstore.Position) PositionResponse {
	return PositionResponse{
		ID: p.ID, Owner: p.Owner, Tier: string(p.Tier), PrincipalUnits: p.PrincipalUnits, Principal: money.Format(p.PrincipalUnits),
		StakedUnits: p.StakedUnits, AutoCompound: p.AutoCompound, Validator: p.Validator, Status: string(p.Status),
		UnlockAt: p.UnlockAt, MaturedAt: p.MaturedAt, CreatedAt: p.CreatedAt, ClosedAt: p.ClosedAt,
	}
}

// UnstakeRequestResponse is a flexible unstake request.
type UnstakeRequestResponse struct {
	PositionID  int64      `json:"position_id"`
	Owner       string     `json:"owner"`
	AmountUnits int64      `json:"amount_units"`
	Amount      string     `json:"amount"`
	Status      string     `json:"status"`
	RequestedAt time.Time  `json:"requested_at"`
	ReleasesAt  time.Time  `json:"releases_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
}

func unstakeDTO(u ledgerstore.UnstakeRequest) UnstakeRequestResponse {
	return UnstakeRequestResponse{PositionID: u.PositionID, Owner: u.Owner, AmountUnits: u.AmountUnits, Amount: money.Format(u.AmountUnits),
		Status: string(u.Status), RequestedAt: u.RequestedAt, ReleasesAt: u.ReleasesAt, CompletedAt: u.CompletedAt}
}

// UnstakeResponse is POST /staking/positions/:id/unstake: the position and,
// for a flexible one, its cooldown request.
type UnstakeResponse struct {
	Position PositionResponse        `json:"position"`
	Request  *UnstakeRequestResponse `json:"unstake_request,omitempty"`
}

// TierAPYResponse is one tier's live APY.
type TierAPYResponse struct {
	Tier       string `json:"tier"`
	LockDays   int    `json:"lock_days"`
	BaseBps    int64  `json:"base_bps"`
	PremiumBps int64  `json:"premium_bps"`
	APYBps     int64  `json:"apy_bps"`
	APY        string `json:"apy"` // percent, e.g. "13.10"
	Cooldown   string `json:"cooldown,omitempty"`
}

// APYTiersResponse is GET /staking/apy-tiers.
type APYTiersResponse struct {
	TVLRatioBps      int64             `json:"tvl_ratio_bps"`
	StakedUnits      int64             `json:"staked_units"`
	CirculatingUnits int64             `json:"circulating_units"`
	CircuitBreaker   bool              `json:"circuit_breaker"`
	MinStakeUnits    int64             `json:"min_stake_units"`
	Tiers            []TierAPYResponse `json:"tiers"`
}

// DelegateRequest is the body of POST /staking/positions/:id/delegate; an
// empty validator removes the delegation.
type DelegateRequest struct {
	Validator string `json:"validator"`
}

// ValidatorRequest is the body of POST /staking/validator.
type ValidatorRequest struct {
	CommissionBps *int64 `json:"commission_bps"`
	Accepting     *bool  `json:"accepting"`
}

// ValidatorResponse is a validator.
type ValidatorResponse struct {
	AgentDID       string    `json:"agent_did"`
	CommissionBps  int64     `json:"commission_bps"`
	Accepting      bool      `json:"accepting"`
	DelegatedUnits int64     `json:"delegated_units"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// RewardResponse is one paid reward.
type RewardResponse struct {
	Date           string `json:"date"`
	PositionID     int64  `json:"position_id"`
	Owner          string `json:"owner"`
	Validator      string `json:"validator,omitempty"`
	RewardUnits    int64  `json:"reward_units"`
	OwnerUnits     int64  `json:"owner_units"`
	ValidatorUnits int64  `json:"validator_units"`
	APYBps         int64  `json:"apy_bps"`
	Compounded     bool   `json:"compounded"`
}

// SlashRequest is the body of the slash-stake route.
type SlashRequest struct {
	CaseID string `json:"case_id"`
	Reason string `json:"reason"`
}

// SlashResponse is a committed slash.
type SlashResponse struct {
	CaseID       string    `json:"case_id"`
	AgentDID     string    `json:"agent_did"`
	Positions    int       `json:"positions"`
	SlashedUnits int64     `json:"slashed_units"`
	PenaltyUnits int64     `json:"penalty_units"`
	Reason       string    `json:"reason"`
	CreatedAt    time.Time `json:"created_at"`
}

// --- handlers ----------------------------------------------------------------

func (h *StakingHandler) apyTiers(c *gin.Context) {
	a, err := h.o.Store.StakingAPY(c.Request.Context(), h.o.Curve)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := APYTiersResponse{TVLRatioBps: a.TVLRatioBps, StakedUnits: a.StakedUnits, CirculatingUnits: a.CirculatingUnits, MinStakeUnits: staking.MinStakeUnits}
	for _, t := range a.Tiers {
		r := TierAPYResponse{Tier: string(t.Tier.ID), LockDays: t.Tier.LockDays, BaseBps: t.BaseBps, PremiumBps: t.Tier.PremiumBps,
			APYBps: t.APYBps, APY: percent(t.APYBps)}
		if !t.Tier.Locked() {
			r.Cooldown = staking.Cooldown.String()
		}
		out.CircuitBreaker = t.BreakerHit
		out.Tiers = append(out.Tiers, r)
	}
	c.JSON(http.StatusOK, out)
}

func percent(bps int64) string {
	return strconv.FormatInt(bps/100, 10) + "." + strings.TrimPrefix(strconv.FormatInt(100+bps%100, 10), "1")
}

func (h *StakingHandler) stake(c *gin.Context) {
	var req StakeRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	if err := api.RequireFields(api.Field("tier", req.Tier)); err != nil {
		api.WriteError(c, err)
		return
	}
	amount, err := amountOf(req.AmountUnits, req.Amount, true)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	// A 503 (the lock-expiry workflow did not start) is not stored by the
	// idempotency layer: a retry with the same key replays the stake and
	// starts it.
	p, err := h.o.Stakes.Stake(c.Request.Context(), ledgerstore.StakeRequest{
		Owner: principal(c).Subject, Tier: req.Tier, AmountUnits: amount, AutoCompound: req.AutoCompound,
		Validator: req.Validator, IdempotencyKey: api.IdempotencyKeyFrom(c),
	})
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusCreated, positionDTO(p))
}

// subjectAccount is ?agent= (admins, owners) or the caller itself.
func (h *StakingHandler) subjectAccount(c *gin.Context) (string, bool) {
	p := principal(c)
	account := c.Query("agent")
	if account == "" {
		account = p.Subject
	}
	ok := p.HasScope(api.ScopeAdmin)
	if !ok {
		var err error
		if ok, err = h.o.Owner(c.Request.Context(), p, account); err != nil {
			api.WriteError(c, err)
			return "", false
		}
	}
	if !ok {
		api.WriteError(c, apperr.New(apperr.Forbidden, "the caller may not read the staking of %q", clip(account)))
		return "", false
	}
	return account, true
}

func queryInt(c *gin.Context, name string) (int64, bool) {
	s := c.Query(name)
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		api.WriteError(c, apperr.New(apperr.Invalid, "%s must be a non-negative integer", name))
		return 0, false
	}
	return n, true
}

// pageOfCaller reads the caller's account and the after/limit page
// parameters; on false the error response has been written.
func (h *StakingHandler) pageOfCaller(c *gin.Context) (account string, after int64, limit int, ok bool) {
	if account, ok = h.subjectAccount(c); !ok {
		return "", 0, 0, false
	}
	after, ok1 := queryInt(c, "after")
	lim, ok2 := queryInt(c, "limit")
	if !ok1 || !ok2 {
		return "", 0, 0, false
	}
	return account, after, int(lim), true
}

func (h *StakingHandler) positions(c *gin.Context) {
	account, after, limit, ok := h.pageOfCaller(c)
	if !ok {
		return
	}
	ps, err := h.o.Store.Positions(c.Request.Context(), account, after, limit)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := struct {
		Positions []PositionResponse `json:"positions"`
	}{Positions: make([]PositionResponse, len(ps))}
	for i, p := range ps {
		out.Positions[i] = positionDTO(p)
	}
	c.JSON(http.StatusOK, out)
}

func positionID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		api.WriteError(c, apperr.New(apperr.Invalid, "position id %q is not a positive integer", clip(c.Param("id"))))
		return 0, false
	}
	return id, true
}

func (h *StakingHandler) position(c *gin.Context) {
	id, ok := positionID(c)
	if !ok {
		return
	}
	p, err := h.o.Store.Position(c.Request.Context(), id)
	if err == nil {
		pr := principal(c)
		var mine bool
		if mine, err = h.o.Owner(c.Request.Context(), pr, p.Owner); err == nil && !mine && !pr.HasScope(api.ScopeAdmin) {
			err = apperr.New(apperr.NotFound, "position %d not found", id)
		}
	}
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, positionDTO(p))
}

// unstake: a locked position after its term closes at once (200); a
// flexible one enters its cooldown and its workflow starts (202). If the
// workflow cannot be started the answer is 503 (not stored by the
// idempotency layer): a retry finds the request and starts it again.
func (h *StakingHandler) unstake(c *gin.Context) {
	id, ok := positionID(c)
	if !ok {
		return
	}
	res, err := h.o.Stakes.Unstake(c.Request.Context(), principal(c).Subject, id)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := UnstakeResponse{Position: positionDTO(res.Position)}
	status := http.StatusOK
	if res.Request != nil {
		r := unstakeDTO(*res.Request)
		out.Request = &r
		if res.Request.Status == staking.UnstakePending {
			status = http.StatusAccepted
		}
	}
	c.JSON(status, out)
}

func (h *StakingHandler) unstakeRequests(c *gin.Context) {
	account, after, limit, ok := h.pageOfCaller(c)
	if !ok {
		return
	}
	rs, err := h.o.Store.UnstakeRequests(c.Request.Context(), account, after, limit)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := struct {
		Requests []UnstakeRequestResponse `json:"unstake_requests"`
	}{Requests: make([]UnstakeRequestResponse, len(rs))}
	for i, r := range rs {
		out.Requests[i] = unstakeDTO(r)
	}
	c.JSON(http.StatusOK, out)
}

func (h *StakingHandler) delegate(c *gin.Context) {
	id, ok := positionID(c)
	if !ok {
		return
	}
	var req DelegateRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	p, err := h.o.Store.Delegate(c.Request.Context(), principal(c).Subject, id, req.Validator)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, positionDTO(p))
}

func (h *StakingHandler) setValidator(c *gin.Context) {
	var req ValidatorRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	if req.CommissionBps == nil || req.Accepting == nil {
		api.WriteError(c, apperr.New(apperr.Invalid, "commission_bps (0..10000) and accepting are required"))
		return
	}
	v, err := h.o.Store.SetValidator(c.Request.Context(), principal(c).Subject, *req.CommissionBps, *req.Accepting)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, ValidatorResponse{AgentDID: v.AgentDID, CommissionBps: v.CommissionBps, Accepting: v.Accepting, UpdatedAt: v.UpdatedAt})
}

func (h *StakingHandler) validators(c *gin.Context) {
	limit, ok := queryInt(c, "limit")
	if !ok {
		return
	}
	vs, err := h.o.Store.Validators(c.Request.Context(), c.Query("after"), int(limit))
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := struct {
		Validators []ValidatorResponse `json:"validators"`
	}{Validators: make([]ValidatorResponse, len(vs))}
	for i, v := range vs {
		out.Validators[i] = ValidatorResponse{AgentDID: v.AgentDID, CommissionBps: v.CommissionBps, Accepting: v.Accepting, DelegatedUnits: v.DelegatedUnits, UpdatedAt: v.UpdatedAt}
	}
	c.JSON(http.StatusOK, out)
}

// rewards pages the caller's (or ?agent=) reward history, newest first;
// cursor is next_cursor of the previous page ("<date>/<position>").
func (h *StakingHandler) rewards(c *gin.Context) {
	account, ok := h.subjectAccount(c)
	if !ok {
		return
	}
	limit, ok := queryInt(c, "limit")
	if !ok {
		return
	}
	var cur ledgerstore.RewardCursor
	if s := c.Query("cursor"); s != "" {
		d, p, found := strings.Cut(s, "/")
		n, err := strconv.ParseInt(p, 10, 64)
		if _, derr := time.Parse(staking.DateLayout, d); !found || err != nil || derr != nil {
			api.WriteError(c, apperr.New(apperr.Invalid, "cursor %q is not a cursor returned by this endpoint", clip(s)))
			return
		}
		cur = ledgerstore.RewardCursor{Date: d, PositionID: n}
	}
	rs, err := h.o.Store.Rewards(c.Request.Context(), account, cur, int(limit))
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := struct {
		Rewards    []RewardResponse `json:"rewards"`
		NextCursor string           `json:"next_cursor,omitempty"`
	}{Rewards: make([]RewardResponse, len(rs))}
	for i, r := range rs {
		out.Rewards[i] = RewardResponse{Date: r.Date, PositionID: r.PositionID, Owner: r.Owner, Validator: r.Validator, RewardUnits: r.RewardUnits,
			OwnerUnits: r.OwnerUnits, ValidatorUnits: r.ValidatorUnits, APYBps: r.APYBps, Compounded: r.Compounded}
	}
	if n := len(rs); n > 0 && (limit == 0 && n == ledgerstore.DefaultPageSize || limit > 0 && n == int(min(limit, ledgerstore.MaxStakingPage))) {
		out.NextCursor = rs[n-1].Date + "/" + strconv.FormatInt(rs[n-1].PositionID, 10)
	}
	c.JSON(http.StatusOK, out)
}

func (h *StakingHandler) slash(c *gin.Context) {
	var req SlashRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	if err := api.RequireFields(api.Field("case_id", req.CaseID), api.Field("reason", req.Reason)); err != nil {
		api.WriteError(c, err)
		return
	}
	s, err := h.o.Store.SlashStake(c.Request.Context(), ledgerstore.SlashRequest{
		AgentDID: c.Param("did"), CaseID: req.CaseID, Reason: req.Reason, Actor: principal(c).Subject,
	})
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, SlashResponse{CaseID: s.CaseID, AgentDID: s.AgentDID, Positions: s.Positions, SlashedUnits: s.SlashedUnits,
		PenaltyUnits: s.PenaltyUnits, Reason: s.Reason, CreatedAt: s.CreatedAt})
}
