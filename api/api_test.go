package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEngine(t *testing.T, maxBody int64) *gin.Engine {
	t.Helper()
	return api.NewEngine(api.EngineOptions{Log: quietLog, Registry: prometheus.NewRegistry(), MaxBodyBytes: maxBody})
}

type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func do(t *testing.T, h http.Handler, method, path, body string, hdr map[string]string) (*httptest.ResponseRecorder, errBody) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var e errBody
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	return rec, e
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	cases := map[apperr.Code]int{
		apperr.Invalid: 400, apperr.Unauthenticated: 401, apperr.Forbidden: 403, apperr.NotFound: 404,
		apperr.Conflict: 409, apperr.IdempotencyReuse: 409, apperr.TooLarge: 413, apperr.InsufficientFunds: 422,
		apperr.FailedPrecondition: 422, apperr.RateLimited: 429, apperr.Internal: 500, apperr.Unavailable: 503,
		apperr.Code("made_up"): 500,
		apperr.PeerNotAdmitted: 403, apperr.ExposureCapExceeded: 422, apperr.AmbiguousHome: 409,
	}
	for code, want := range cases {
		require.Equal(t, want, api.StatusOf(code), code)
	}

	e := newEngine(t, 1<<10)
	e.GET("/boom", func(c *gin.Context) {
		api.WriteError(c, apperr.Wrap(io.ErrUnexpectedEOF, apperr.Internal, "db exploded: secret-dsn"))
	})
	e.GET("/plain", func(c *gin.Context) { api.WriteError(c, io.EOF) })
	e.GET("/panic", func(c *gin.Context) { panic("kaboom") })

	rec, body := do(t, e, "GET", "/boom", "", nil)
	require.Equal(t, 500, rec.Code)
	require.Equal(t, "internal", body.Error.Code)
	rec, body = do(t, e, "GET", "/plain", "", nil)
	require.Equal(t, 500, rec.Code)
	require.Equal(t, "internal error", body.Error.Message, "non-apperr errors never leak their text")
	rec, body = do(t, e, "GET", "/panic", "", nil)
	require.Equal(t, 500, rec.Code)
	require.Equal(t, "internal", body.Error.Code)
	rec, body = do(t, e, "DELETE", "/plain", "", nil)
	require.Equal(t, 405, rec.Code)
	require.Equal(t, "method_not_allowed", body.Error.Code)
}

type sample struct {
	Name   string `json:"name"`
	Amount int64  `json:"amount_units"`
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	e := newEngine(t, 64)
	e.POST("/x", func(c *gin.Context) {
		var s sample
		if err := api.DecodeJSON(c, &s); err != nil {
			api.WriteError(c, err)
			return
		}
		c.JSON(200, s)
	})
	cases := []struct {
		name, body, ctype string
		status            int
		msg               string
	}{
		{"ok", `{"name":"a","amount_units":5}`, "application/json", 200, ""},
		{"ok without content type", `{"name":"a"}`, "", 200, ""},
		{"empty", ``, "application/json", 400, "empty"},
		{"malformed", `{"name":`, "application/json", 400, "malformed JSON"},
		{"syntax", `{"name" "a"}`, "application/json", 400, "malformed JSON at byte"},
		{"wrong type", `{"amount_units":"5"}`, "application/json", 400, `field "amount_units" must be int64`},
		{"fraction", `{"amount_units":1.5}`, "application/json", 400, `field "amount_units" must be int64`},
		{"overflow", `{"amount_units":9223372036854775808}`, "application/json", 400, `amount_units`},
		{"unknown field", `{"nme":"a"}`, "application/json", 400, `unknown field "nme"`},
		{"trailing data", `{"name":"a"} {}`, "application/json", 400, "after the JSON object"},
		{"array", `[1]`, "application/json", 400, "must be api_test.sample"},
		{"bad utf8", "{\"name\":\"\xff\"}", "application/json", 400, "UTF-8"},
		{"wrong content type", `{"name":"a"}`, "text/plain", 400, "Content-Type"},
		{"too large", `{"name":"` + strings.Repeat("a", 100) + `"}`, "application/json", 413, "larger than 64 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.ctype != "" {
				hdr["Content-Type"] = tc.ctype
			}
			rec, body := do(t, e, "POST", "/x", tc.body, hdr)
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			if tc.status != 200 {
				require.Contains(t, body.Error.Message, tc.msg)
				require.NotEmpty(t, body.Error.Code)
			}
		})
	}
}

func TestRequestIDAndBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEngine(t, 16)
	e.POST("/echo", func(c *gin.Context) {
		b, err := io.ReadAll(c.Request.Body)
		if err != nil {
			api.WriteError(c, apperr.New(apperr.TooLarge, "too large"))
			return
		}
		c.String(200, string(b))
	})
	rec, _ := do(t, e, "POST", "/echo", "hi", map[string]string{api.HeaderRequestID: "abc-123"})
	require.Equal(t, "abc-123", rec.Header().Get(api.HeaderRequestID))
	rec, _ = do(t, e, "POST", "/echo", "hi", map[string]string{api.HeaderRequestID: "bad id with spaces"})
	require.Len(t, rec.Header().Get(api.HeaderRequestID), 36, "an unsafe ID is replaced by a UUID")

	req := httptest.NewRequest("POST", "/echo", strings.NewReader(strings.Repeat("x", 17)))
	rec = httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	require.Equal(t, 413, rec.Code, "declared Content-Length over the limit")
}

func TestRequireScope(t *testing.T) {
	t.Parallel()
	e := newEngine(t, 1<<10)
	e.Use(func(c *gin.Context) {
		if s := c.GetHeader("X-Test-Scope"); s != "" {
			api.SetPrincipal(c, api.Principal{Subject: "dev:1", Scopes: []string{s}})
		}
	})
	e.GET("/admin", api.RequireScope(api.ScopeAdmin), func(c *gin.Context) { c.Status(204) })
	rec, body := do(t, e, "GET", "/admin", "", nil)
	require.Equal(t, 401, rec.Code)
	require.Equal(t, "unauthenticated", body.Error.Code)
	rec, body = do(t, e, "GET", "/admin", "", map[string]string{"X-Test-Scope": "agent"})
	require.Equal(t, 403, rec.Code)
	require.Equal(t, "forbidden", body.Error.Code)
	rec, _ = do(t, e, "GET", "/admin", "", map[string]string{"X-Test-Scope": "admin"})
	require.Equal(t, 204, rec.Code)
}

// The idempotency middleware on a real database: replay, reuse with another
// body, concurrent duplicates applying once, 5xx not stored.
func TestIdempotencyMiddleware(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleTEG)
	store := db.NewIdempotencyStore(tdb.Pool)
	e := newEngine(t, 1<<10)
	var applied atomic.Int64
	var failNext atomic.Bool
	e.Use(func(c *gin.Context) {
		api.SetPrincipal(c, api.Principal{Subject: c.GetHeader("X-Test-Subject"), Scopes: []string{"agent"}})
	})
	e.POST("/pay", api.Idempotency(store, true, time.Now), func(c *gin.Context) {
		var s sample
		if err := api.DecodeJSON(c, &s); err != nil {
			api.WriteError(c, err)
			return
		}
		if failNext.Swap(false) {
			api.WriteError(c, apperr.New(apperr.Unavailable, "try again"))
			return
		}
		time.Sleep(20 * time.Millisecond) // widen the window for concurrent duplicates
		n := applied.Add(1)
		c.JSON(201, gin.H{"applied": n, "name": s.Name, "key": api.IdempotencyKeyFrom(c)})
	})
	h := func(key, subject string) map[string]string {
		m := map[string]string{"Content-Type": "application/json", "X-Test-Subject": subject}
		if key != "" {
			m[api.HeaderIdempotencyKey] = key
		}
		return m
	}

	rec, body := do(t, e, "POST", "/pay", `{"name":"a"}`, h("", "agent-1"))
	require.Equal(t, 400, rec.Code)
	require.Contains(t, body.Error.Message, "Idempotency-Key")
	rec, _ = do(t, e, "POST", "/pay", `{"name":"a"}`, h("has space", "agent-1"))
	require.Equal(t, 400, rec.Code)

	first, _ := do(t, e, "POST", "/pay", `{"name":"a"}`, h("k1", "agent-1"))
	require.Equal(t, 201, first.Code)
	require.Empty(t, first.Header().Get(api.HeaderIdempotentReplay))
	again, _ := do(t, e, "POST", "/pay", `{"name":"a"}`, h("k1", "agent-1"))
	require.Equal(t, 201, again.Code)
	require.Equal(t, "true", again.Header().Get(api.HeaderIdempotentReplay))
	require.Equal(t, first.Body.String(), again.Body.String(), "identical stored response")
	require.EqualValues(t, 1, applied.Load())

	rec, body = do(t, e, "POST", "/pay", `{"name":"b"}`, h("k1", "agent-1"))
	require.Equal(t, 409, rec.Code)
	require.Equal(t, "idempotency_key_reused", body.Error.Code)

	// Keys are per caller.
	rec, _ = do(t, e, "POST", "/pay", `{"name":"b"}`, h("k1", "agent-2"))
	require.Equal(t, 201, rec.Code)
	require.EqualValues(t, 2, applied.Load())

	// 5xx responses are not stored: the same key can be retried.
	failNext.Store(true)
	rec, _ = do(t, e, "POST", "/pay", `{"name":"c"}`, h("k2", "agent-1"))
	require.Equal(t, 503, rec.Code)
	rec, _ = do(t, e, "POST", "/pay", `{"name":"c"}`, h("k2", "agent-1"))
	require.Equal(t, 201, rec.Code)
	require.EqualValues(t, 3, applied.Load())

	// 4xx responses are stored like any other final answer.
	bad1, _ := do(t, e, "POST", "/pay", `{"name":1}`, h("k3", "agent-1"))
	require.Equal(t, 400, bad1.Code)
	bad2, _ := do(t, e, "POST", "/pay", `{"name":1}`, h("k3", "agent-1"))
	require.Equal(t, "true", bad2.Header().Get(api.HeaderIdempotentReplay))
	require.Equal(t, bad1.Body.String(), bad2.Body.String())

	// Concurrent duplicates apply once; the others see the stored response
	// or a retryable 409 while the first is in flight.
	before := applied.Load()
	var wg sync.WaitGroup
	codes := make([]int, 16)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest("POST", "/pay", bytes.NewReader([]byte(`{"name":"d"}`)))
			for k, v := range h("k4", "agent-1") {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			codes[i] = rec.Code
		}()
	}
	wg.Wait()
	require.EqualValues(t, before+1, applied.Load(), "applied exactly once")
	for _, c := range codes {
		require.Contains(t, []int{201, 409}, c)
	}
}
