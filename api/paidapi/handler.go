// Package paidapi is the REST surface of paid agent calls (package
// paidcalls): POST /payments/tokens (the payer), POST /payments/settle
// (the payee) and POST /payments/release (payee or payer). Every route
// needs a bearer token of this registry and an Idempotency-Key.
package paidapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/paidcalls"
)

// TokenRequest is the body of POST /payments/tokens. Give the maximum as
// max_amount_units (base units) or max_amount (decimal string).
type TokenRequest struct {
	Payee            string `json:"payee"`
	MaxAmountUnits   *int64 `json:"max_amount_units,omitempty"`
	MaxAmount        string `json:"max_amount,omitempty"`
	ExpiresInSeconds *int64 `json:"expires_in_seconds,omitempty"` // default 300, 2..3600
	Description      string `json:"description,omitempty"`
}

// TokenResponse is a payment token and what it says.
type TokenResponse struct {
	Token     string    `json:"token"`
	HoldID    uuid.UUID `json:"hold_id"`
	Payer     string    `json:"payer"`
	Payee     string    `json:"payee"`
	MaxUnits  int64     `json:"max_units"`
	MaxAmount string    `json:"max_amount"`
	Currency  string    `json:"currency"`
	ExpiresAt time.Time `json:"expires_at"`
	Nonce     string    `json:"nonce"`
	Registry  string    `json:"registry"`
	// PayeeRegistry is the payee's registry when it is another one of
	// the frame (the payee settles there; the payment crosses over).
	PayeeRegistry string `json:"payee_registry,omitempty"`
}

// SettleRequest is the body of POST /payments/settle.
type SettleRequest struct {
	Token       string `json:"token"`
	AmountUnits *int64 `json:"amount_units,omitempty"`
	Amount      string `json:"amount,omitempty"`
}

// SettleResponse is a settled payment. Status "posted": paid here by
// transfer transfer_id. A payee on another registry (target_registry) is
// paid by the cross-registry transfer transfer_id (status its state,
// "pending" at first; GET /transfers/{id} at the payer's registry follows
// it), and fee_units/net_units are what the payee's registry charges and
// credits when it commits.
type SettleResponse struct {
	HoldID         uuid.UUID `json:"hold_id"`
	TransferID     uuid.UUID `json:"transfer_id"`
	Payer          string    `json:"payer"`
	Payee          string    `json:"payee"`
	AmountUnits    int64     `json:"amount_units"`
	FeeUnits       int64     `json:"fee_units"`
	NetUnits       int64     `json:"net_units"`
	Status         string    `json:"status"`
	TargetRegistry string    `json:"target_registry,omitempty"`
}

// ReleaseRequest is the body of POST /payments/release.
type ReleaseRequest struct {
	Token string `json:"token"`
}

// ReleaseResponse is a released payment token.
type ReleaseResponse struct {
	HoldID uuid.UUID `json:"hold_id"`
	Status string    `json:"status"`
}

// Handler serves the routes.
type Handler struct {
	Service     *paidcalls.Service
	Idempotency api.IdempotencyStore
	Auth        gin.HandlerFunc // nil when the group already authenticates
	Now         func() time.Time
	// Records, when set, reads idempotency records in the database the
	// service's ledger writes them to (the TEG's): issuing and settling
	// then commit their stored response with the hold instead of
	// claiming and completing it around it (folded.go).
	Records Records
}

// Mount registers the routes on v1.
func (h *Handler) Mount(v1 *gin.RouterGroup) {
	p := v1
	if h.Auth != nil {
		p = v1.Group("", h.Auth)
	}
	now := h.Now
	if now == nil {
		now = time.Now
	}
	idem := api.Idempotency(h.Idempotency, true, now)
	user := api.RequireScope(api.ScopeAgent, api.ScopeDeveloper)
	if h.Records != nil {
		// The hold's transaction writes the stored response (folded.go).
		p.POST("/payments/tokens", user, h.issueFolded)
		p.POST("/payments/settle", user, h.settleFolded)
	} else {
		p.POST("/payments/tokens", user, idem, h.issue)
		p.POST("/payments/settle", user, idem, h.settle)
	}
	p.POST("/payments/release", user, idem, h.release)
}

func caller(c *gin.Context) (string, error) {
	p, _ := api.PrincipalFrom(c)
	k, err := ledger.KindOf(p.Subject)
	if err != nil || !ledger.IsUserKind(k) {
		return "", apperr.New(apperr.Forbidden, "the caller has no ledger account")
	}
	return p.Subject, nil
}

// issueRequest reads and checks POST /payments/tokens.
func issueRequest(c *gin.Context) (paidcalls.IssueRequest, error) {
	var req TokenRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		return paidcalls.IssueRequest{}, err
	}
	payer, err := caller(c)
	if err != nil {
		return paidcalls.IssueRequest{}, err
	}
	if err := api.RequireFields(api.Field("payee", req.Payee)); err != nil {
		return paidcalls.IssueRequest{}, err
	}
	k, err := ledger.KindOf(req.Payee)
	if err != nil || !ledger.IsUserKind(k) {
		return paidcalls.IssueRequest{}, apperr.New(apperr.Invalid, "payee must be an agent DID or developer account")
	}
	max, err := amountOf("max_amount", req.MaxAmountUnits, req.MaxAmount)
	if err != nil {
		return paidcalls.IssueRequest{}, err
	}
	var ttl time.Duration
	if req.ExpiresInSeconds != nil {
		ttl = time.Duration(*req.ExpiresInSeconds) * time.Second
		if *req.ExpiresInSeconds <= 0 || ttl > paidcalls.MaxTTL {
			return paidcalls.IssueRequest{}, apperr.New(apperr.Invalid, "expires_in_seconds must be %d..%d", int(paidcalls.MinTTL/time.Second), int(paidcalls.MaxTTL/time.Second))
		}
	}
	return paidcalls.IssueRequest{
		Payer: payer, Payee: req.Payee, MaxUnits: max, TTL: ttl, Description: req.Description,
		IdempotencyKey: api.IdempotencyKeyFrom(c),
	}, nil
}

func tokenResponse(out paidcalls.Issued) TokenResponse {
	cl := out.Claims
	return TokenResponse{
		Token: out.Token, HoldID: cl.HoldID, Payer: cl.Payer, Payee: cl.Payee, MaxUnits: cl.MaxUnits,
		MaxAmount: money.Format(cl.MaxUnits), Currency: cl.Currency, ExpiresAt: cl.Expiry(), Nonce: cl.Nonce, Registry: cl.Registry,
		PayeeRegistry: cl.PayeeRegistry,
	}
}

// issue is POST /payments/tokens behind api.Idempotency.
func (h *Handler) issue(c *gin.Context) {
	req, err := issueRequest(c)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out, err := h.Service.Issue(c.Request.Context(), req)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusCreated, tokenResponse(out))
}

// settleRequest reads and checks POST /payments/settle: the payee (the
// caller), the token and the amount.
func settleRequest(c *gin.Context) (payee, tok string, amount int64, err error) {
	var req SettleRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		return "", "", 0, err
	}
	if payee, err = caller(c); err != nil {
		return "", "", 0, err
	}
	if err := api.RequireFields(api.Field("token", req.Token)); err != nil {
		return "", "", 0, err
	}
	amount, err = amountOf("amount", req.AmountUnits, req.Amount)
	return payee, req.Token, amount, err
}

func settleResponse(s paidcalls.Settled) SettleResponse {
	return SettleResponse{
		HoldID: s.HoldID, TransferID: s.TransferID, Payer: s.Payer, Payee: s.Payee, AmountUnits: s.AmountUnits,
		FeeUnits: s.FeeUnits, NetUnits: s.NetUnits, Status: s.Status, TargetRegistry: s.TargetRegistry,
	}
}

// settle is POST /payments/settle behind api.Idempotency.
func (h *Handler) settle(c *gin.Context) {
	payee, tok, amount, err := settleRequest(c)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	h.settleFor(c, payee, tok, amount)
}

func (h *Handler) settleFor(c *gin.Context, payee, tok string, amount int64) {
	s, err := h.Service.Settle(c.Request.Context(), payee, tok, amount)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, settleResponse(s))
}

func (h *Handler) release(c *gin.Context) {
	var req ReleaseRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	who, err := caller(c)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	if err := api.RequireFields(api.Field("token", req.Token)); err != nil {
		api.WriteError(c, err)
		return
	}
	hold, err := h.Service.Release(c.Request.Context(), who, req.Token)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, ReleaseResponse{HoldID: hold.ID, Status: string(hold.Status)})
}

func amountOf(field string, units *int64, decimal string) (int64, error) {
	switch {
	case units != nil && decimal != "":
		return 0, apperr.New(apperr.Invalid, "give either %s_units or %s, not both", field, field)
	case units != nil:
		if *units <= 0 {
			return 0, apperr.New(apperr.Invalid, "%s_units must be a positive integer number of base units", field)
		}
		return *units, nil
	case decimal != "":
		u, err := money.Parse(decimal)
		if err != nil || u <= 0 {
			return 0, apperr.New(apperr.Invalid, "%s must be a positive decimal string with at most 8 decimals", field)
		}
		return u, nil
	}
	return 0, apperr.New(apperr.Invalid, "%s_units (integer base units) or %s (decimal string) is required", field, field)
}
