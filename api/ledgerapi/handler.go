// Package ledgerapi is the TEG's REST surface (SPEC §9): transfers,
// balances, holds and the admin mint/burn/grant routes. Handlers decode
// DTOs strictly, check who may act on which account, call the ledger store
// and map results back; errors are apperr codes written by api.WriteError,
// never statuses chosen here.
//
// Every mutating route requires an Idempotency-Key header (api.Idempotency:
// same key + same body replays the stored response with
// Idempotent-Replayed: true, a different body is 409). The key is also
// passed to the store as the business idempotency key, so a crash between
// the commit and the stored response cannot apply a request twice. POST
// /transfers goes one step further: a committed transfer is its own record
// (see postTransfer), so it costs one group commit instead of three.
package ledgerapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/bridgeapi"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/payments"
)

// Hold expiry bounds for the API.
const (
	DefaultHoldTTL = time.Hour
	MaxPostBody    = 4 << 10
)

// OwnerFunc reports whether principal p may act for account (send from it,
// read its balance and history, post its holds). The default allows exactly
// the account whose ID is p.Subject; the registry can widen it (e.g. a
// developer managing an agent).
type OwnerFunc func(ctx context.Context, p api.Principal, account string) (bool, error)

// Options configure a Handler.
type Options struct {
	Store *ledgerstore.Store // required
	// Payments routes POST /transfers and finds GET /transfers/{id}, here
	// or across registries. Nil: transfers on this registry only, each
	// committed by Store alone (production passes the store's
	// GroupCommitter and the cross-registry machinery).
	Payments *payments.Service
	// Idempotency stores responses of mutating requests (required;
	// db.NewIdempotencyStore on the TEG database).
	Idempotency api.IdempotencyStore
	// Auth authenticates requests and sets the api.Principal (the registry's
	// auth middleware). Nil when the group passed to Mount already
	// authenticates.
	Auth  gin.HandlerFunc
	Owner OwnerFunc
	Now   func() time.Time
	// RecordTransferResponses puts POST /transfers behind the generic
	// api.Idempotency middleware (a claim and a stored response per
	// request), as every other mutating route. By default a successful
	// transfer is its own idempotency record instead (see postTransfer);
	// this switch exists for comparison benchmarks.
	RecordTransferResponses bool
}

// Handler serves the ledger routes.
type Handler struct {
	o Options
}

// New returns a Handler. It panics on missing required options (a wiring bug).
func New(o Options) *Handler {
	if o.Store == nil || o.Idempotency == nil {
		panic("ledgerapi: Store and Idempotency are required")
	}
	if o.Payments == nil {
		o.Payments = &payments.Service{Ledger: o.Store, Transfers: o.Store}
	}
	if o.Owner == nil {
		o.Owner = func(_ context.Context, p api.Principal, account string) (bool, error) {
			return p.Subject == account, nil
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{o: o}
}

// Mount registers the routes on v1 (the /api/v1 group):
//
//	agent|developer: POST /transfers, GET /transfers, POST /holds,
//	                 POST /holds/:id/post, POST /holds/:id/void
//	agent|developer|admin: GET /transfers/:id, GET /holds/:id, GET /agents/:did/balance
//	admin:           POST /admin/mint, POST /admin/burn, POST /admin/grants,
//	                 POST /admin/checkpoints
//
// Parties only: a transfer or hold is visible to its sender, its receiver
// and admins; others get 404 (its existence is not disclosed).
func (h *Handler) Mount(v1 *gin.RouterGroup) {
	p := v1
	if h.o.Auth != nil {
		p = v1.Group("", h.o.Auth)
	}
	idem := api.Idempotency(h.o.Idempotency, true, h.o.Now)
	user := api.RequireScope(api.ScopeAgent, api.ScopeDeveloper)
	anyScope := api.RequireScope(api.ScopeAgent, api.ScopeDeveloper, api.ScopeAdmin)
	admin := api.RequireScope(api.ScopeAdmin)

	if h.o.RecordTransferResponses {
		p.POST("/transfers", user, idem, h.createTransfer)
	} else {
		p.POST("/transfers", user, h.postTransfer)
	}
	p.GET("/transfers", anyScope, h.listTransfers)
	p.GET("/transfers/:id", anyScope, h.getTransfer)
	p.GET("/agents/:did/balance", anyScope, h.balance)
	p.POST("/holds", user, idem, h.createHold)
	p.GET("/holds/:id", anyScope, h.getHold)
	p.POST("/holds/:id/post", anyScope, idem, h.postHold)
	p.POST("/holds/:id/void", anyScope, idem, h.voidHold)
	p.POST("/admin/mint", admin, idem, h.mint)
	p.POST("/admin/burn", admin, idem, h.burn)
	p.POST("/admin/grants", admin, idem, h.grant)
	p.POST("/admin/checkpoints", admin, idem, h.checkpoint)
}

func principal(c *gin.Context) api.Principal {
	p, _ := api.PrincipalFrom(c) // RequireScope ran first
	return p
}

// mayAct reports whether the caller acts for account (admins always do when
// admin is true).
func (h *Handler) mayAct(c *gin.Context, account string, admin bool) (bool, error) {
	p := principal(c)
	if admin && p.HasScope(api.ScopeAdmin) {
		return true, nil
	}
	return h.o.Owner(c.Request.Context(), p, account)
}

// callerAccount is the account the caller sends from: its own subject,
// which must be an agent or developer account.
func callerAccount(c *gin.Context) (string, error) {
	sub := principal(c).Subject
	k, err := ledger.KindOf(sub)
	if err != nil || !ledger.IsUserKind(k) {
		return "", apperr.New(apperr.Forbidden, "the caller %q has no ledger account to send from", clip(sub))
	}
	return sub, nil
}

func (h *Handler) createTransfer(c *gin.Context) {
	var req TransferRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	h.createTransferFor(c, req)
}

// createTransferFor is POST /transfers behind api.Idempotency.
func (h *Handler) createTransferFor(c *gin.Context, req TransferRequest) {
	from, err := callerAccount(c)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	if req.From != "" && req.From != from {
		ok, err := h.o.Owner(c.Request.Context(), principal(c), req.From)
		if err != nil {
			api.WriteError(c, err)
			return
		}
		if !ok {
			api.WriteError(c, apperr.New(apperr.Forbidden, "the caller does not own account %q", clip(req.From)))
			return
		}
		from = req.From
	}
	if err := api.RequireFields(api.Field("to", req.To)); err != nil {
		api.WriteError(c, err)
		return
	}
	amount, err := amountOf(req.AmountUnits, req.Amount, true)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	p, err := h.o.Payments.Pay(c.Request.Context(), ledgerstore.TransferRequest{
		From: from, To: req.To, AmountUnits: amount, Memo: req.Memo, IdempotencyKey: api.IdempotencyKeyFrom(c),
	})
	if err != nil {
		api.WriteError(c, err)
		return
	}
	writePayment(c, p)
}

// writePayment answers a payment made: 201 with the transfer here, 202 with
// a cross-registry or bridge transfer (its settlement follows).
func writePayment(c *gin.Context, p payments.Payment) {
	if p.Frame {
		// A receiver of another frame: the bridge transfer, as POST
		// /bridge/transfers answers it.
		c.JSON(http.StatusAccepted, bridgeapi.DTO(p.Bridge))
		return
	}
	if p.Cross {
		c.JSON(http.StatusAccepted, XferDTO(p.Xfer))
		return
	}
	c.JSON(http.StatusCreated, transferDTO(p.Transfer))
}

// postTransfer is POST /transfers with the transfer as its own idempotency
// record, so a successful transfer costs one commit (the group commit)
// instead of three (claim, transfer, stored response):
//
//   - the request hash (method, path, body: as api.Idempotency) is stored
//     on the transfer row, whose business key (sender, client_key) is the
//     caller's (scope, Idempotency-Key);
//   - a retry finds the row in the same batch transaction: same hash → the
//     transfer again, rendered by the same code from the same stored
//     values, byte for byte, with Idempotent-Replayed: true; another hash →
//     409 idempotency_key_reused, as the middleware answers;
//   - the same transaction also looks the key up in idempotency_keys, so
//     responses stored there (below, or before this path existed) are
//     answered as the middleware would;
//   - responses that commit no transfer (4xx: validation, insufficient
//     funds, unknown receiver, and cross-registry acceptances) are stored
//     through api.RecordResponse exactly as before; 5xx store nothing.
//
// Sending from another account the caller manages (a "from" other than the
// caller) keeps the generic records: their scope (the caller) is not the
// business key's sender.
func (h *Handler) postTransfer(c *gin.Context) {
	key, hash, ok := api.ReadIdempotentRequest(c)
	if !ok {
		return
	}
	var req TransferRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		h.recordFailure(c, key, hash, func() { api.WriteError(c, err) })
		return
	}
	caller := principal(c).Subject
	if req.From != "" && req.From != caller {
		api.RecordResponse(c, h.o.Idempotency, key, hash, h.o.Now, func() { h.createTransferFor(c, req) })
		return
	}
	from, err := callerAccount(c)
	if err == nil {
		err = api.RequireFields(api.Field("to", req.To))
	}
	var amount int64
	if err == nil {
		amount, err = amountOf(req.AmountUnits, req.Amount, true)
	}
	if err != nil {
		h.recordFailure(c, key, hash, func() { api.WriteError(c, err) })
		return
	}
	tr := ledgerstore.TransferRequest{
		From: from, To: req.To, AmountUnits: amount, Memo: req.Memo, IdempotencyKey: key, RequestHash: hash,
	}
	t, err := h.o.Payments.Transfer(c.Request.Context(), tr)
	switch {
	case err == nil && t.Recorded != nil && t.Recorded.Abandoned(hash, h.o.Now()):
		// This request's earlier attempt claimed the key and never
		// answered (its process died): run it again under the claim,
		// which the retry takes over.
		api.RecordResponse(c, h.o.Idempotency, key, hash, h.o.Now, func() { h.createTransferFor(c, req) })
	case err == nil && t.Recorded != nil:
		api.AnswerFromRecord(c, key, hash, *t.Recorded)
	case err == nil:
		writeTransfer(c, t)
	case apperr.Is(err, apperr.IdempotencyReuse):
		api.AnswerFromRecord(c, key, hash, db.IdempotencyRecord{}) // the middleware's 409
	case api.StatusOf(apperr.CodeOf(err)) >= 500:
		api.WriteError(c, err) // not stored: the client retries with the key
	default:
		// The payment's second step runs under the idempotency claim, so
		// its answer (a cross-registry acceptance, or the refusal) is
		// stored as every response that commits no transfer here.
		cause := err
		h.recordFailure(c, key, hash, func() {
			p, err := h.o.Payments.Reroute(c.Request.Context(), tr, cause)
			if err != nil {
				api.WriteError(c, err)
				return
			}
			writePayment(c, p)
		})
	}
}

// writeTransfer answers a committed (or replayed) transfer.
func writeTransfer(c *gin.Context, t ledgerstore.Transfer) {
	if t.Replayed {
		c.Header(api.HeaderIdempotentReplay, "true")
	}
	c.JSON(http.StatusCreated, transferDTO(t))
}

// recordFailure answers a POST /transfers that committed no transfer by
// running handle under api.RecordResponse (the response is stored and
// replayed as before) — unless the caller's key already names a transfer
// (committed by a concurrent duplicate), which then answers.
func (h *Handler) recordFailure(c *gin.Context, key string, hash []byte, handle func()) {
	t, found, err := h.o.Store.TransferByClientKey(c.Request.Context(), principal(c).Subject, key)
	switch {
	case err != nil:
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "idempotency lookup failed"))
	case found && bytes.Equal(t.RequestHash, hash):
		t.Replayed = true
		writeTransfer(c, t)
	case found:
		api.AnswerFromRecord(c, key, hash, db.IdempotencyRecord{})
	default:
		api.RecordResponse(c, h.o.Idempotency, key, hash, h.o.Now, handle)
	}
}

func parseID(c *gin.Context, what string) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		api.WriteError(c, apperr.New(apperr.Invalid, "%s id %q is not a UUID", what, clip(c.Param("id"))))
		return uuid.Nil, false
	}
	return id, true
}

// visible reports whether the caller may see something between a and b.
func (h *Handler) visible(c *gin.Context, a, b string) (bool, error) {
	for _, acct := range []string{a, b} {
		ok, err := h.mayAct(c, acct, true)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func (h *Handler) getTransfer(c *gin.Context) {
	id, ok := parseID(c, "transfer")
	if !ok {
		return
	}
	p, err := h.o.Payments.Get(c.Request.Context(), id)
	if err == nil {
		from, to := p.Parties()
		if ok, verr := h.visible(c, from, to); verr != nil {
			err = verr
		} else if !ok {
			err = apperr.New(apperr.NotFound, "transfer %s not found", id)
		}
	}
	if err != nil {
		api.WriteError(c, err)
		return
	}
	switch {
	case p.Frame:
		c.JSON(http.StatusOK, bridgeapi.DTO(p.Bridge))
	case p.Cross:
		c.JSON(http.StatusOK, XferDTO(p.Xfer))
	default:
		c.JSON(http.StatusOK, transferDTO(p.Transfer))
	}
}

// listTransfers pages the caller's transfers, newest first. Query: cursor
// (from next_cursor), limit (1..200, default 50), and for admins account.
func (h *Handler) listTransfers(c *gin.Context) {
	account := c.Query("account")
	if account == "" {
		account = principal(c).Subject
		if _, err := ledger.KindOf(account); err != nil {
			api.WriteError(c, apperr.New(apperr.Invalid, "the caller has no ledger account; name one with ?account="))
			return
		}
	}
	if ok, err := h.mayAct(c, account, true); err != nil || !ok {
		if err == nil {
			err = apperr.New(apperr.Forbidden, "the caller may not read the history of %q", clip(account))
		}
		api.WriteError(c, err)
		return
	}
	limit := 0
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			api.WriteError(c, apperr.New(apperr.Invalid, "limit must be a positive integer (at most %d)", ledgerstore.MaxPageSize))
			return
		}
		limit = min(n, ledgerstore.MaxPageSize)
	}
	cursor := uuid.Nil
	if s := c.Query("cursor"); s != "" {
		var err error
		if cursor, err = uuid.Parse(s); err != nil {
			api.WriteError(c, apperr.New(apperr.Invalid, "cursor %q is not a cursor returned by this endpoint", clip(s)))
			return
		}
	}
	page, next, err := h.o.Store.ListTransfers(c.Request.Context(), account, cursor, limit)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := TransferPage{Transfers: make([]TransferResponse, len(page))}
	for i, t := range page {
		out.Transfers[i] = transferDTO(t)
	}
	if next != uuid.Nil {
		out.NextCursor = next.String()
	}
	c.JSON(http.StatusOK, out)
}

func (h *Handler) balance(c *gin.Context) {
	account := c.Param("did")
	if ok, err := h.mayAct(c, account, true); err != nil || !ok {
		if err == nil {
			err = apperr.New(apperr.Forbidden, "the caller may not read the balance of %q", clip(account))
		}
		api.WriteError(c, err)
		return
	}
	b, err := h.o.Store.Balances(c.Request.Context(), account)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	out := BalanceResponse{
		Account: b.Account.ID, Kind: string(b.Account.Kind), AvailableUnits: b.AvailableUnits,
		Available: money.Format(b.AvailableUnits), Buckets: make([]BucketResponse, len(b.Buckets)),
	}
	for i, bk := range b.Buckets {
		out.Buckets[i] = BucketResponse{Bucket: bk.Bucket, Units: bk.Units, HeldUnits: bk.HeldUnits, AvailableUnits: bk.AvailableUnits, Amount: money.Format(bk.Units)}
		out.Buckets[i].Denomination, out.Buckets[i].OriginFrame = bucketDenomination(bk.Bucket)
	}
	c.JSON(http.StatusOK, out)
}

func (h *Handler) createHold(c *gin.Context) {
	var req HoldRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	from, err := callerAccount(c)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	if err := api.RequireFields(api.Field("to", req.To)); err != nil {
		api.WriteError(c, err)
		return
	}
	amount, err := amountOf(req.AmountUnits, req.Amount, true)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	ttl := DefaultHoldTTL
	if req.ExpiresInSeconds != nil {
		s := *req.ExpiresInSeconds
		if s < 1 || s > int64(ledgerstore.MaxHoldTTL/time.Second) {
			api.WriteError(c, apperr.New(apperr.Invalid, "expires_in_seconds must be 1..%d", int64(ledgerstore.MaxHoldTTL/time.Second)))
			return
		}
		ttl = time.Duration(s) * time.Second
	}
	// Agents and developers may only hold for agent/developer receivers;
	// transit holds are for the cross-registry saga's activities.
	if err := userReceiver(req.To); err != nil {
		api.WriteError(c, err)
		return
	}
	hold, err := h.o.Store.PlaceHold(c.Request.Context(), ledgerstore.HoldRequest{
		From: from, To: req.To, AmountUnits: amount, Memo: req.Memo, ExpiresAt: h.o.Now().Add(ttl),
		IdempotencyKey: api.IdempotencyKeyFrom(c),
	})
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusCreated, holdDTO(hold))
}

func userReceiver(to string) error {
	k, err := ledger.KindOf(to)
	if err != nil {
		return apperr.New(apperr.Invalid, "to: %s", err.Error())
	}
	if !ledger.IsUserKind(k) {
		return apperr.New(apperr.Invalid, "to: %q is not an agent or developer account", clip(to))
	}
	return nil
}

// holdFor loads hold id and checks the caller is a party (404 otherwise).
// payerOnly restricts to the reserving account (and admins).
func (h *Handler) holdFor(c *gin.Context, payerOnly bool) (ledgerstore.Hold, bool) {
	id, ok := parseID(c, "hold")
	if !ok {
		return ledgerstore.Hold{}, false
	}
	hold, err := h.o.Store.GetHold(c.Request.Context(), id)
	if err == nil {
		var vis bool
		if vis, err = h.visible(c, hold.From, hold.To); err == nil && !vis {
			err = apperr.New(apperr.NotFound, "hold %s not found", id)
		}
		if err == nil && payerOnly {
			var payer bool
			if payer, err = h.mayAct(c, hold.From, true); err == nil && !payer {
				err = apperr.New(apperr.Forbidden, "only the reserving account can post hold %s", id)
			}
		}
	}
	if err != nil {
		api.WriteError(c, err)
		return ledgerstore.Hold{}, false
	}
	return hold, true
}

func (h *Handler) getHold(c *gin.Context) {
	if hold, ok := h.holdFor(c, false); ok {
		c.JSON(http.StatusOK, holdDTO(hold))
	}
}

// postHold posts a hold (payer or admin). The body is optional.
func (h *Handler) postHold(c *gin.Context) {
	var req PostHoldRequest
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, MaxPostBody+1))
	if err != nil || len(body) > MaxPostBody {
		api.WriteError(c, apperr.New(apperr.Invalid, "could not read a body of at most %d bytes", MaxPostBody))
		return
	}
	if strings.TrimSpace(string(body)) != "" {
		if err := api.DecodeJSONBytes(body, &req); err != nil {
			api.WriteError(c, err)
			return
		}
	}
	amount, err := amountOf(req.AmountUnits, req.Amount, false)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	hold, ok := h.holdFor(c, true)
	if !ok || !notXferHold(c, hold) {
		return
	}
	posted, t, err := h.o.Store.PostHold(c.Request.Context(), hold.ID, amount)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, PostHoldResponse{Hold: holdDTO(posted), Transfer: transferDTO(t)})
}

// voidHold voids a hold (payer, receiver or admin).
func (h *Handler) voidHold(c *gin.Context) {
	hold, ok := h.holdFor(c, false)
	if !ok || !notXferHold(c, hold) {
		return
	}
	v, err := h.o.Store.VoidHold(c.Request.Context(), hold.ID)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, holdDTO(v))
}

func (h *Handler) mint(c *gin.Context) { h.supply(c, h.o.Store.Mint) }
func (h *Handler) burn(c *gin.Context) { h.supply(c, h.o.Store.Burn) }

func (h *Handler) supply(c *gin.Context, op func(context.Context, ledgerstore.SupplyRequest) (ledgerstore.SupplyOperation, error)) {
	var req MintRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	amount, err := amountOf(req.AmountUnits, req.Amount, true)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	res, err := op(c.Request.Context(), ledgerstore.SupplyRequest{
		AmountUnits: amount, Reason: req.Reason, Actor: principal(c).Subject, IdempotencyKey: api.IdempotencyKeyFrom(c),
	})
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusCreated, supplyDTO(res))
}

func (h *Handler) grant(c *gin.Context) {
	var req GrantRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	if err := api.RequireFields(api.Field("to", req.To)); err != nil {
		api.WriteError(c, err)
		return
	}
	amount, err := amountOf(req.AmountUnits, req.Amount, true)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	res, err := h.o.Store.Grant(c.Request.Context(), ledgerstore.SupplyRequest{
		To: req.To, AmountUnits: amount, Reason: req.Reason, Actor: principal(c).Subject, IdempotencyKey: api.IdempotencyKeyFrom(c),
	})
	if err != nil {
		api.WriteError(c, err)
		return
	}
	c.JSON(http.StatusCreated, supplyDTO(res))
}
