package paidapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/paidapi"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/paidcalls"
	"github.com/theprotocol-dev/theprotocol/paytoken"
	"github.com/theprotocol-dev/theprotocol/registry"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const avt = int64(100_000_000)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type rig struct {
	t     *testing.T
	ctx   context.Context
	pool  *pgxpool.Pool
	store *ledgerstore.Store
	svc   *paidcalls.Service
	clock *clock
	h     http.Handler
}

func newRig(t *testing.T) *rig {
	tdb := testenv.NewDB(t, db.RoleTEG)
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	ctx := context.Background()
	store := ledgerstore.New(tdb.Pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true, Gate: nil, Now: clk.Now})
	_, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	svc := &paidcalls.Service{Ledger: store, Key: key, Issuer: "spiffe://alpha.test/registry/alpha-main",
		Registry: "alpha-main", Frame: "alpha", Currency: "AVT", Now: clk.Now}
	e := gin.New()
	// Authentication stand-in: the subject comes from a test header.
	auth := func(c *gin.Context) {
		api.SetPrincipal(c, api.Principal{Subject: c.GetHeader("X-Test-Subject"), Scopes: []string{api.ScopeAgent}})
		c.Next()
	}
	(&paidapi.Handler{Service: svc, Idempotency: db.NewIdempotencyStore(tdb.Pool), Records: store, Auth: auth, Now: clk.Now}).Mount(e.Group("/api/v1"))
	return &rig{t: t, ctx: ctx, pool: tdb.Pool, store: store, svc: svc, clock: clk, h: e}
}

func (r *rig) agent(funds int64) string {
	did := registry.NewDID()
	_, _, err := r.store.OpenAccount(r.ctx, did, ledger.KindAgent)
	require.NoError(r.t, err)
	if funds > 0 {
		// The treasury is empty on a fresh ledger: mint through a gate-free
		// genesis once, then grant.
		_, _ = r.store.Genesis(r.ctx, 1_000_000*avt)
		_, err := r.store.Grant(r.ctx, ledgerstore.SupplyRequest{To: did, AmountUnits: funds, Reason: "test", Actor: "admin:test", IdempotencyKey: uuid.NewString()})
		require.NoError(r.t, err)
	}
	return did
}

func (r *rig) call(who, path, key string, body any, out any) (int, http.Header) {
	r.t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(r.t, err)
	req := httptest.NewRequest(http.MethodPost, "/api/v1"+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-Subject", who)
	if key == "" {
		key = uuid.NewString()
	}
	req.Header.Set("Idempotency-Key", key)
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	if out != nil && w.Code < 300 {
		require.NoError(r.t, json.Unmarshal(w.Body.Bytes(), out), w.Body.String())
	}
	if w.Code >= 300 {
		var e api.ErrorBody
		require.NoError(r.t, json.Unmarshal(w.Body.Bytes(), &e), "every refusal has an error body: %s", w.Body.String())
		require.NotEmpty(r.t, e.Error.Message)
	}
	return w.Code, w.Header()
}

// state is everything a refused call must leave untouched: every balance
// row and the number of outbox events.
func (r *rig) state() string {
	var s string
	require.NoError(r.t, r.pool.QueryRow(r.ctx, `SELECT coalesce(string_agg(account_id||'/'||bucket||'='||units||'/'||held_units, ',' ORDER BY account_id, bucket), '')
		|| ' outbox=' || (SELECT count(*) FROM outbox) FROM balances`).Scan(&s))
	return s
}

func (r *rig) avail(did string) int64 {
	b, err := r.store.Balances(r.ctx, did)
	require.NoError(r.t, err)
	return b.AvailableUnits
}

func (r *rig) eventCount(typ string) int {
	var n int
	require.NoError(r.t, r.pool.QueryRow(r.ctx, `SELECT count(*) FROM outbox WHERE event_type = $1`, typ).Scan(&n))
	return n
}

func TestPaymentTokensSettleOnceAndRefuseBadTokensMovingNothing(t *testing.T) {
	r := newRig(t)
	alice, bob, carol := r.agent(100*avt), r.agent(0), r.agent(0)

	var tok paidapi.TokenResponse
	issueKey := uuid.NewString()
	code, _ := r.call(alice, "/payments/tokens", issueKey, map[string]any{"payee": bob, "max_amount": "10", "description": "one answer"}, &tok)
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, 10*avt, tok.MaxUnits)
	require.Equal(t, 90*avt, r.avail(alice), "the maximum is reserved")
	require.Equal(t, 1, r.eventCount(events.TypePaymentTokenIssued))

	// The same Idempotency-Key and body: the stored answer, no second hold.
	var again paidapi.TokenResponse
	code, hdr := r.call(alice, "/payments/tokens", issueKey, map[string]any{"payee": bob, "max_amount": "10", "description": "one answer"}, &again)
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	require.Equal(t, tok, again)
	require.Equal(t, 90*avt, r.avail(alice))

	// The token verifies offline with the registry's key, for bob only.
	c, err := paytoken.VerifyFor(tok.Token, bob, r.svc.Keys(), r.clock.Now())
	require.NoError(t, err)
	require.Equal(t, tok.HoldID, c.HoldID)

	_, otherKey, _ := ed25519.GenerateKey(nil)
	forged, err := paytoken.Sign(otherKey, c)
	require.NoError(t, err)
	parts := strings.Split(tok.Token, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))

	before := r.state()
	bad := []struct {
		name   string
		who    string
		path   string
		body   map[string]any
		status int
	}{
		{"forged signature", bob, "/payments/settle", map[string]any{"token": forged, "amount": "1"}, 400},
		{"broken signature", bob, "/payments/settle", map[string]any{"token": tampered, "amount": "1"}, 400},
		{"not a token", bob, "/payments/settle", map[string]any{"token": "abc", "amount": "1"}, 400},
		{"wrong audience", carol, "/payments/settle", map[string]any{"token": tok.Token, "amount": "1"}, 403},
		{"payer settling", alice, "/payments/settle", map[string]any{"token": tok.Token, "amount": "1"}, 403},
		{"over the maximum", bob, "/payments/settle", map[string]any{"token": tok.Token, "amount": "10.00000001"}, 400},
		{"no amount", bob, "/payments/settle", map[string]any{"token": tok.Token}, 400},
		{"negative amount", bob, "/payments/settle", map[string]any{"token": tok.Token, "amount_units": -1}, 400},
		{"release by a stranger", carol, "/payments/release", map[string]any{"token": tok.Token}, 403},
		{"issue for oneself", alice, "/payments/tokens", map[string]any{"payee": alice, "max_amount": "1"}, 400},
		{"issue over the balance", alice, "/payments/tokens", map[string]any{"payee": bob, "max_amount": "1000"}, 422},
		{"issue for an unknown payee", alice, "/payments/tokens", map[string]any{"payee": registry.NewDID(), "max_amount": "1"}, 404},
		{"issue with a too long expiry", alice, "/payments/tokens", map[string]any{"payee": bob, "max_amount": "1", "expires_in_seconds": 7200}, 400},
		{"unknown field", alice, "/payments/tokens", map[string]any{"payee": bob, "max_amount": "1", "extra": 1}, 400},
	}
	for _, b := range bad {
		code, _ := r.call(b.who, b.path, "", b.body, nil)
		require.Equal(t, b.status, code, b.name)
		require.Equal(t, before, r.state(), "%s moved something", b.name)
	}

	// Bob settles 4 AVT: alice pays 4, bob gets 4 − fee, the rest returns.
	var st paidapi.SettleResponse
	settleKey := uuid.NewString()
	code, _ = r.call(bob, "/payments/settle", settleKey, map[string]any{"token": tok.Token, "amount": "4"}, &st)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 4*avt, st.AmountUnits)
	require.Equal(t, 4*avt-st.FeeUnits, st.NetUnits)
	require.Positive(t, st.FeeUnits)
	require.Equal(t, 96*avt, r.avail(alice))
	require.Equal(t, st.NetUnits, r.avail(bob))
	require.Equal(t, 1, r.eventCount(events.TypePaymentSettled))

	// A retry with the same key is the stored answer; the token replayed
	// under a new key is refused and moves nothing.
	var st2 paidapi.SettleResponse
	code, hdr = r.call(bob, "/payments/settle", settleKey, map[string]any{"token": tok.Token, "amount": "4"}, &st2)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	require.Equal(t, st, st2)
	before = r.state()
	for _, amt := range []string{"4", "1"} {
		code, _ = r.call(bob, "/payments/settle", "", map[string]any{"token": tok.Token, "amount": amt}, nil)
		require.Equal(t, http.StatusConflict, code, "replayed token, amount %s", amt)
	}
	code, _ = r.call(bob, "/payments/release", "", map[string]any{"token": tok.Token}, nil)
	require.Equal(t, http.StatusUnprocessableEntity, code, "a settled token cannot be released")
	require.Equal(t, before, r.state())
	require.Equal(t, 1, r.eventCount(events.TypePaymentSettled))

	// Release: the payee declines, the reservation returns, the token is dead.
	var tok2 paidapi.TokenResponse
	code, _ = r.call(alice, "/payments/tokens", "", map[string]any{"payee": bob, "max_amount_units": 3 * avt}, &tok2)
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, 93*avt, r.avail(alice))
	var rel paidapi.ReleaseResponse
	code, _ = r.call(bob, "/payments/release", "", map[string]any{"token": tok2.Token}, &rel)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "voided", rel.Status)
	require.Equal(t, 96*avt, r.avail(alice))
	require.Equal(t, 1, r.eventCount(events.TypePaymentReleased))
	before = r.state()
	code, _ = r.call(bob, "/payments/settle", "", map[string]any{"token": tok2.Token, "amount": "1"}, nil)
	require.Equal(t, http.StatusUnprocessableEntity, code, "a released token cannot be settled")
	require.Equal(t, before, r.state())

	// Expiry: an unsettled token dies with its hold; the sweep voids it.
	var tok3 paidapi.TokenResponse
	code, _ = r.call(alice, "/payments/tokens", "", map[string]any{"payee": bob, "max_amount": "2", "expires_in_seconds": 30}, &tok3)
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, 94*avt, r.avail(alice))
	r.clock.Advance(31 * time.Second)
	before = r.state()
	code, _ = r.call(bob, "/payments/settle", "", map[string]any{"token": tok3.Token, "amount": "1"}, nil)
	require.Equal(t, http.StatusUnprocessableEntity, code, "expired token")
	require.Equal(t, before, r.state())
	n, err := r.store.ExpireHolds(r.ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 96*avt, r.avail(alice))
}

// Issuing and settling write their stored response in the hold's own
// transaction: a success leaves one complete record and no claim; the
// middleware's rules still hold (another request under the key is 409
// idempotency_key_reused, a stored refusal answers a later retry, and
// concurrent duplicates place one hold).
func TestFoldedIdempotencyKeepsTheMiddlewaresRules(t *testing.T) {
	r := newRig(t)
	alice, bob := r.agent(10*avt), r.agent(0)
	records := func(key string) (n int, done bool) {
		require.NoError(t, r.pool.QueryRow(r.ctx, `SELECT count(*), coalesce(bool_and(status_code IS NOT NULL), false) FROM idempotency_keys WHERE key = $1`, key).Scan(&n, &done))
		return n, done
	}

	key := uuid.NewString()
	var tok paidapi.TokenResponse
	code, _ := r.call(alice, "/payments/tokens", key, map[string]any{"payee": bob, "max_amount": "2"}, &tok)
	require.Equal(t, http.StatusCreated, code)
	n, done := records(key)
	require.Equal(t, 1, n)
	require.True(t, done, "the record commits complete with the hold")
	before := r.state()
	code, _ = r.call(alice, "/payments/tokens", key, map[string]any{"payee": bob, "max_amount": "3"}, nil)
	require.Equal(t, http.StatusConflict, code, "another request under the key")
	require.Equal(t, before, r.state())

	// A refusal is stored: the same request later answers it even though
	// it would now succeed, and moves nothing.
	poor := uuid.NewString()
	body := map[string]any{"payee": bob, "max_amount": "50"}
	code, _ = r.call(alice, "/payments/tokens", poor, body, nil)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	_, err := r.store.Grant(r.ctx, ledgerstore.SupplyRequest{To: alice, AmountUnits: 100 * avt, Reason: "test", Actor: "admin:test", IdempotencyKey: uuid.NewString()})
	require.NoError(t, err)
	before = r.state()
	code, hdr := r.call(alice, "/payments/tokens", poor, body, nil)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	require.Equal(t, before, r.state(), "the stored refusal rolled the hold back")

	// Concurrent duplicates: one hold, every answer the same token.
	dup := uuid.NewString()
	var wg sync.WaitGroup
	toks := make([]paidapi.TokenResponse, 6)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := r.call(alice, "/payments/tokens", dup, map[string]any{"payee": bob, "max_amount": "1"}, &toks[i])
			require.Equal(t, http.StatusCreated, code)
		}()
	}
	wg.Wait()
	for _, tk := range toks {
		require.Equal(t, toks[0], tk)
	}
	var holds int
	require.NoError(t, r.pool.QueryRow(r.ctx, `SELECT count(*) FROM holds WHERE client_key = $1`, dup).Scan(&holds))
	require.Equal(t, 1, holds)

	skey := uuid.NewString()
	code, _ = r.call(bob, "/payments/settle", skey, map[string]any{"token": tok.Token, "amount": "1"}, nil)
	require.Equal(t, http.StatusOK, code)
	n, done = records(skey)
	require.Equal(t, 1, n)
	require.True(t, done)
}
