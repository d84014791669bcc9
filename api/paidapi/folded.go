package paidapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/paidcalls"
)

// Records reads idempotency records. *ledgerstore.Store implements it.
type Records interface {
	IdempotencyRecordOf(ctx context.Context, scope, key string) (db.IdempotencyRecord, bool, error)
}

var _ Records = (*ledgerstore.Store)(nil)

// The folded idempotency path of issuing and settling (the hot path of a
// paid call). api.Idempotency claims the key, runs the handler and stores
// the response: two commits around the one that moves the hold. Here the
// hold's own transaction writes the record, complete, next to the hold
// and its event, so a successful step costs one commit. The rules stay
// api.Idempotency's:
//
//   - same key, same request → the stored response (Idempotent-Replayed);
//     another request → 409 idempotency_key_reused. A retry finds the hold
//     (issue: its key is the Idempotency-Key; settle: already posted) or
//     the record itself (the transaction fails with ErrRecorded and rolls
//     back), then answers from the record;
//   - responses that commit no hold step (4xx) are stored through
//     api.RecordResponse, as before; 5xx store nothing;
//   - settlements forwarded to another registry, or crossing to one, keep
//     api.RecordResponse whole: no hold step here records them.

const jsonType = "application/json; charset=utf-8"

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) record(c *gin.Context, key string, hash []byte, status int, v any) (*ledgerstore.StepRecord, []byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, nil, err
	}
	return &ledgerstore.StepRecord{
		Scope: api.IdempotencyScope(c), Key: key, Method: c.Request.Method, Path: c.Request.URL.Path,
		RequestHash: hash, Status: status, Body: body,
	}, body, nil
}

// refuse stores and answers a refusal (a record already there answers
// instead, as api.RecordResponse does).
func (h *Handler) refuse(c *gin.Context, key string, hash []byte, err error) {
	if api.StatusOf(apperr.CodeOf(err)) >= 500 {
		api.WriteError(c, err)
		return
	}
	api.RecordResponse(c, h.Idempotency, key, hash, h.now, func() { api.WriteError(c, err) })
}

// fromRecord answers from the key's record; otherwise runs fallback.
func (h *Handler) fromRecord(c *gin.Context, key string, hash []byte, fallback func()) {
	rec, found, err := h.Records.IdempotencyRecordOf(c.Request.Context(), api.IdempotencyScope(c), key)
	switch {
	case err != nil:
		api.WriteError(c, apperr.Wrap(err, apperr.Unavailable, "idempotency lookup failed"))
	case found:
		api.AnswerFromRecord(c, key, hash, rec)
	default:
		fallback()
	}
}

func (h *Handler) issueFolded(c *gin.Context) {
	key, hash, ok := api.ReadIdempotentRequest(c)
	if !ok {
		return
	}
	req, err := issueRequest(c)
	if err != nil {
		h.refuse(c, key, hash, err)
		return
	}
	var body []byte
	req.Record = func(out paidcalls.Issued) (rec *ledgerstore.StepRecord, err error) {
		rec, body, err = h.record(c, key, hash, http.StatusCreated, tokenResponse(out))
		return rec, err
	}
	out, err := h.Service.Issue(c.Request.Context(), req)
	switch {
	case err == nil && !out.Hold.Replayed:
		c.Data(http.StatusCreated, jsonType, body)
	case err == nil:
		// The key's hold exists: its record answers (a hold made without
		// one gets a token for it, as a replay always did).
		h.fromRecord(c, key, hash, func() {
			c.Header(api.HeaderIdempotentReplay, "true")
			c.JSON(http.StatusCreated, tokenResponse(out))
		})
	case errors.Is(err, ledgerstore.ErrRecorded), apperr.Is(err, apperr.IdempotencyReuse):
		h.fromRecord(c, key, hash, func() { api.AnswerFromRecord(c, key, hash, db.IdempotencyRecord{}) })
	default:
		h.refuse(c, key, hash, err)
	}
}

func (h *Handler) settleFolded(c *gin.Context) {
	key, hash, ok := api.ReadIdempotentRequest(c)
	if !ok {
		return
	}
	payee, tok, amount, err := settleRequest(c)
	if err != nil {
		h.refuse(c, key, hash, err)
		return
	}
	if h.Service.Forwards(tok) {
		api.RecordResponse(c, h.Idempotency, key, hash, h.now, func() { h.settleFor(c, payee, tok, amount) })
		return
	}
	var body []byte
	_, err = h.Service.SettleRecorded(c.Request.Context(), payee, tok, amount, func(s paidcalls.Settled) (rec *ledgerstore.StepRecord, err error) {
		rec, body, err = h.record(c, key, hash, http.StatusOK, settleResponse(s))
		return rec, err
	})
	switch {
	case err == nil:
		c.Data(http.StatusOK, jsonType, body)
	case errors.Is(err, ledgerstore.ErrRecorded), apperr.Is(err, apperr.Conflict):
		// Already settled: by this key's request (its record answers) or
		// by another (the refusal is stored).
		h.fromRecord(c, key, hash, func() { h.refuse(c, key, hash, err) })
	default:
		h.refuse(c, key, hash, err)
	}
}
