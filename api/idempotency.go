package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
)

// Idempotency headers.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderIdempotentReplay is "true" on a response replayed from storage.
	HeaderIdempotentReplay = "Idempotent-Replayed"
)

// validIdempotencyKey reports whether key is 1-200 characters of
// [A-Za-z0-9._:-]: a byte loop rather than a regexp, checked on every
// mutating request (the regexp engine cost ~1 µs per request).
func validIdempotencyKey(key string) bool {
	if len(key) < 1 || len(key) > 200 {
		return false
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// IdempotencyStore is what the middleware needs from storage
// (db.IdempotencyStore implements it).
type IdempotencyStore interface {
	Claim(ctx context.Context, scope, key string, hash []byte, method, path string, now time.Time) (bool, db.IdempotencyRecord, error)
	Complete(ctx context.Context, scope, key string, status int, body []byte, now time.Time) error
	Release(ctx context.Context, scope, key string) error
}

const idempotencyKeyCtx = "theprotocol.idempotency_key"

// IdempotencyKeyFrom returns the request's validated Idempotency-Key ("" if
// none). Handlers derive business keys from it (e.g. a transfer's unique
// client key), which is what makes a crash between the business commit and
// the stored response safe.
func IdempotencyKeyFrom(c *gin.Context) string { return c.GetString(idempotencyKeyCtx) }

// Idempotency makes mutating requests safe to retry (SPEC §4):
//   - same key + same request (method, route, body) → the stored response,
//     with Idempotent-Replayed: true, and nothing runs again;
//   - same key + different request → 409 idempotency_key_reused;
//   - a duplicate while the first is still running → 409 conflict (retry);
//   - 5xx responses are not stored: the claim is released so the client can
//     retry with the same key.
//
// Keys are scoped per caller (the authenticated principal; anonymous callers
// share the "anonymous" scope, so mount it after authentication). When
// required is true, a missing key is a 400.
func Idempotency(store IdempotencyStore, required bool, now func() time.Time) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.GetHeader(HeaderIdempotencyKey) == "" && !required {
			c.Next()
			return
		}
		key, hash, ok := ReadIdempotentRequest(c)
		if !ok {
			return
		}
		RecordResponse(c, store, key, hash, now, c.Next)
	}
}

// ReadIdempotentRequest is the first half of Idempotency for handlers that
// keep their own records (e.g. a business row that doubles as the record):
// it requires a well-formed Idempotency-Key, reads the body (leaving it
// readable again), hashes method, path and body, and makes the key
// available to IdempotencyKeyFrom. On failure it has written the error
// response and ok is false.
func ReadIdempotentRequest(c *gin.Context) (key string, hash []byte, ok bool) {
	key = c.GetHeader(HeaderIdempotencyKey)
	if key == "" {
		WriteError(c, apperr.New(apperr.Invalid, "header %s is required on this route", HeaderIdempotencyKey))
		return "", nil, false
	}
	if !validIdempotencyKey(key) {
		WriteError(c, apperr.New(apperr.Invalid, "%s must be 1-200 characters of [A-Za-z0-9._:-]", HeaderIdempotencyKey))
		return "", nil, false
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			WriteError(c, apperr.New(apperr.TooLarge, "request body larger than %d bytes", tooLarge.Limit))
			return "", nil, false
		}
		WriteError(c, apperr.Wrap(err, apperr.Invalid, "could not read request body"))
		return "", nil, false
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	h := sha256.New()
	h.Write([]byte(c.Request.Method + " " + c.Request.URL.Path + "\n"))
	h.Write(body)
	c.Set(idempotencyKeyCtx, key)
	return key, h.Sum(nil), true
}

// IdempotencyScope is the scope of the caller's keys: the authenticated
// principal, or "anonymous".
func IdempotencyScope(c *gin.Context) string {
	if p, ok := PrincipalFrom(c); ok {
		return p.Subject
	}
	return "anonymous"
}

// AnswerFromRecord answers a request whose key already has record rec, as
// Idempotency does: 409 idempotency_key_reused for another request, 409
// conflict while the first is in flight, else the stored response with
// Idempotent-Replayed: true.
func AnswerFromRecord(c *gin.Context, key string, hash []byte, rec db.IdempotencyRecord) {
	switch {
	case !bytes.Equal(rec.RequestHash, hash):
		WriteError(c, apperr.New(apperr.IdempotencyReuse, "%s %q was already used with a different request", HeaderIdempotencyKey, key))
	case rec.StatusCode == 0:
		WriteError(c, apperr.New(apperr.Conflict, "a request with %s %q is still in progress; retry later", HeaderIdempotencyKey, key))
	default:
		c.Header(HeaderIdempotentReplay, "true")
		c.Data(rec.StatusCode, "application/json; charset=utf-8", rec.Body)
		c.Abort()
	}
}

// RecordResponse is the second half of Idempotency: it claims the key in
// store (answering from the existing record if there is one), runs handle,
// and stores its response (5xx: releases the claim instead).
//
// A claim that nobody completes would answer 409 "in progress" until the
// sweeper drops it a day later, so every way out of handle other than a
// response to store releases it: a panic (released, then re-panicked for
// the recovery middleware), a handler that answered nothing because its
// client hung up, and a client that hung up while the claim was made.
func RecordResponse(c *gin.Context, store IdempotencyStore, key string, hash []byte, now func() time.Time, handle func()) {
	scope := IdempotencyScope(c)
	reqCtx := c.Request.Context()
	// The claim runs to its end even when the client hangs up meanwhile:
	// cancelled half-way, the row could be committed while the caller only
	// sees the error, leaving a claim nobody knows to release.
	claimCtx, cancelClaim := context.WithTimeout(context.WithoutCancel(reqCtx), claimTimeout)
	claimed, rec, err := store.Claim(claimCtx, scope, key, hash, c.Request.Method, c.Request.URL.Path, now())
	cancelClaim()
	if err != nil {
		WriteError(c, apperr.Wrap(err, apperr.Unavailable, "idempotency store unavailable"))
		return
	}
	if !claimed {
		AnswerFromRecord(c, key, hash, rec)
		return
	}
	// Store or release on a context that survives the client hanging up:
	// the work is done, the record must be too.
	settle := func(f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), claimTimeout)
		defer cancel()
		return f(ctx)
	}
	release := func() {
		if err := settle(func(ctx context.Context) error { return store.Release(ctx, scope, key) }); err != nil {
			_ = c.Error(apperr.Wrap(err, apperr.Internal, "release idempotency claim"))
		}
	}
	if reqCtx.Err() != nil {
		// The client left while the key was being claimed: nothing ran.
		release()
		c.Abort()
		return
	}

	rw := &capturingWriter{ResponseWriter: c.Writer}
	c.Writer = rw
	finished := false
	defer func() {
		if !finished {
			release() // handle panicked; the recovery middleware answers
		}
	}()
	handle()
	finished = true

	status := rw.Status()
	// A handler that answered nothing because its client left has no
	// response to replay: the retry must run it.
	if status >= 500 || (!rw.Written() && reqCtx.Err() != nil) {
		release()
		return
	}
	if err := settle(func(ctx context.Context) error { return store.Complete(ctx, scope, key, status, rw.buf.Bytes(), now()) }); err != nil {
		_ = c.Error(apperr.Wrap(err, apperr.Internal, "store idempotent response"))
	}
}

// claimTimeout bounds each idempotency store call made on a context
// detached from the request.
const claimTimeout = 5 * time.Second

// capturingWriter copies the response body so it can be stored.
type capturingWriter struct {
	gin.ResponseWriter
	buf bytes.Buffer
}

func (w *capturingWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *capturingWriter) WriteString(s string) (int, error) {
	w.buf.WriteString(s)
	return w.ResponseWriter.WriteString(s)
}
