package ledgerapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/payments"
	"github.com/theprotocol-dev/theprotocol/recon"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const avt = int64(100_000_000)

// testAuth stands in for the registry's auth middleware: X-Test-Subject and
// X-Test-Scopes (comma-separated) become the principal.
func testAuth(c *gin.Context) {
	if sub := c.GetHeader("X-Test-Subject"); sub != "" {
		api.SetPrincipal(c, api.Principal{Subject: sub, Scopes: strings.Split(c.GetHeader("X-Test-Scopes"), ","), Registry: "alpha-main"})
	}
	c.Next()
}

type fixture struct {
	t     testing.TB
	pool  *pgxpool.Pool
	store *ledgerstore.Store
	h     http.Handler
	gc    *ledgerstore.GroupCommitter
}

// cleanGate answers a clean supply audit (the gate itself is tested in
// ledgerstore and node).
type cleanGate struct{}

func (cleanGate) SupplyVerdict(context.Context) (recon.Verdict, error) { return recon.Verdict{}, nil }

// newFixture builds the API on a fresh ledger. groupCommit selects the
// production wiring (GroupCommitter + IdempotencyBatcher); otherwise
// transfers run one per transaction and idempotency records go through
// db.IdempotencyStore.
func newFixture(t testing.TB, groupCommit bool) *fixture {
	t.Helper()
	tdb := testenv.NewDB(t, db.RoleTEG)
	s := ledgerstore.New(tdb.Pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true, Gate: cleanGate{}})
	_, err := s.Genesis(context.Background(), 1_000_000*avt)
	require.NoError(t, err)
	f := &fixture{t: t, pool: tdb.Pool, store: s}
	var tr payments.Transferer = s
	var idem api.IdempotencyStore = db.NewIdempotencyStore(tdb.Pool)
	if groupCommit {
		f.gc = s.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
		t.Cleanup(f.gc.Close)
		tr = f.gc
		batcher := ledgerstore.NewIdempotencyBatcher(tdb.Pool)
		t.Cleanup(batcher.Close)
		idem = batcher
	}
	e := api.NewEngine(api.EngineOptions{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), MaxBodyBytes: 64 << 10})
	ledgerapi.New(ledgerapi.Options{Store: s, Payments: &payments.Service{Ledger: s, Transfers: tr}, Idempotency: idem, Auth: testAuth}).Mount(e.Group("/api/v1"))
	f.h = e
	return f
}

func (f *fixture) agent(units int64) string {
	f.t.Helper()
	id := "did:theprotocol:" + uuid.New().String()
	_, _, err := f.store.OpenAccount(context.Background(), id, ledger.KindAgent)
	require.NoError(f.t, err)
	if units > 0 {
		_, err = f.store.Grant(context.Background(), ledgerstore.SupplyRequest{To: id, AmountUnits: units, Reason: "fund", Actor: "admin:t", IdempotencyKey: "f-" + id[16:]})
		require.NoError(f.t, err)
	}
	return id
}

type req struct {
	method, path, body string
	subject, scopes    string
	key                string
	contentType        string
}

type resp struct {
	status   int
	body     []byte
	replayed bool
}

func (r resp) errCode() string {
	var b api.ErrorBody
	_ = json.Unmarshal(r.body, &b)
	return string(b.Error.Code)
}

func (f *fixture) do(r req) resp {
	f.t.Helper()
	body := bytes.NewReader([]byte(r.body))
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.body != "" {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.subject != "" {
		hr.Header.Set("X-Test-Subject", r.subject)
		scopes := r.scopes
		if scopes == "" {
			scopes = api.ScopeAgent
		}
		hr.Header.Set("X-Test-Scopes", scopes)
	}
	if r.key != "" {
		hr.Header.Set(api.HeaderIdempotencyKey, r.key)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, hr)
	return resp{status: w.Code, body: w.Body.Bytes(), replayed: w.Header().Get(api.HeaderIdempotentReplay) == "true"}
}

func (f *fixture) snapshot() string {
	f.t.Helper()
	var s string
	require.NoError(f.t, f.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM ledger_journal)::text || '/' || (SELECT count(*) FROM transfers)::text || '/' ||
		(SELECT count(*) FROM holds)::text || '/' || (SELECT count(*) FROM supply_operations)::text || '/' ||
		(SELECT count(*) FROM outbox)::text || '/' ||
		(SELECT string_agg(account_id || '=' || units || '-' || held_units, ',' ORDER BY account_id, bucket) FROM balances)`).Scan(&s))
	return s
}

// supply is the store's own supply totals.
func (f *fixture) supply() ledgerstore.Supply {
	f.t.Helper()
	s, err := f.store.Supply(context.Background())
	require.NoError(f.t, err)
	return s
}

// available is an account's liquid balance less its active holds.
func (f *fixture) available(id string) int64 {
	f.t.Helper()
	b, err := f.store.Balances(context.Background(), id)
	require.NoError(f.t, err)
	return b.AvailableUnits
}

func TestTransferOverHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	a, b, stranger := f.agent(100*avt), f.agent(0), f.agent(0)

	body := fmt.Sprintf(`{"to":%q,"amount":"10.5","memo":"hi"}`, b)
	r := f.do(req{method: "POST", path: "/api/v1/transfers", body: body, subject: a, key: "k1"})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	require.False(t, r.replayed)
	var tr ledgerapi.TransferResponse
	require.NoError(t, json.Unmarshal(r.body, &tr))
	require.Equal(t, 1_050_000_000, int(tr.AmountUnits))
	require.Equal(t, "10.5", tr.Amount)
	require.Equal(t, int64(5_250_000), tr.FeeUnits)
	require.Equal(t, tr.AmountUnits-tr.FeeUnits, tr.NetUnits)

	// Replay: identical response, flagged, nothing applied again.
	before := f.snapshot()
	r2 := f.do(req{method: "POST", path: "/api/v1/transfers", body: body, subject: a, key: "k1"})
	require.Equal(t, http.StatusCreated, r2.status)
	require.True(t, r2.replayed)
	require.Equal(t, r.body, r2.body)
	// Same key, different body: 409.
	r3 := f.do(req{method: "POST", path: "/api/v1/transfers", body: fmt.Sprintf(`{"to":%q,"amount_units":5}`, b), subject: a, key: "k1"})
	require.Equal(t, http.StatusConflict, r3.status)
	require.Equal(t, "idempotency_key_reused", r3.errCode())
	require.Equal(t, before, f.snapshot())

	// Reads: parties and admins see it, others get 404.
	path := "/api/v1/transfers/" + tr.ID.String()
	require.Equal(t, http.StatusOK, f.do(req{method: "GET", path: path, subject: a}).status)
	require.Equal(t, http.StatusOK, f.do(req{method: "GET", path: path, subject: b}).status)
	require.Equal(t, http.StatusOK, f.do(req{method: "GET", path: path, subject: "admin:x", scopes: "admin"}).status)
	require.Equal(t, http.StatusNotFound, f.do(req{method: "GET", path: path, subject: stranger}).status)
	require.Equal(t, http.StatusNotFound, f.do(req{method: "GET", path: "/api/v1/transfers/" + uuid.NewString(), subject: a}).status)
	require.Equal(t, http.StatusBadRequest, f.do(req{method: "GET", path: "/api/v1/transfers/nope", subject: a}).status)

	// Balance.
	r = f.do(req{method: "GET", path: "/api/v1/agents/" + a + "/balance", subject: a})
	require.Equal(t, http.StatusOK, r.status)
	var bal ledgerapi.BalanceResponse
	require.NoError(t, json.Unmarshal(r.body, &bal))
	require.Equal(t, 100*avt-1_050_000_000, bal.AvailableUnits)
	require.Equal(t, "89.5", bal.Available)
	require.Equal(t, http.StatusForbidden, f.do(req{method: "GET", path: "/api/v1/agents/" + a + "/balance", subject: b}).status)
	require.Equal(t, http.StatusNotFound, f.do(req{method: "GET", path: "/api/v1/agents/did:theprotocol:" + uuid.NewString() + "/balance", subject: "admin:x", scopes: "admin"}).status)

	// History pages.
	for i := range 5 {
		r := f.do(req{method: "POST", path: "/api/v1/transfers", body: fmt.Sprintf(`{"to":%q,"amount_units":%d}`, b, avt+int64(i)), subject: a, key: fmt.Sprintf("h%d", i)})
		require.Equal(t, http.StatusCreated, r.status)
	}
	seen := 0
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		r := f.do(req{method: "GET", path: "/api/v1/transfers?limit=4&cursor=" + cursor, subject: b})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var p ledgerapi.TransferPage
		require.NoError(t, json.Unmarshal(r.body, &p))
		seen += len(p.Transfers)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	require.Equal(t, 6, seen)
	require.Equal(t, http.StatusBadRequest, f.do(req{method: "GET", path: "/api/v1/transfers?limit=0", subject: a}).status)
	require.Equal(t, http.StatusBadRequest, f.do(req{method: "GET", path: "/api/v1/transfers?cursor=zzz", subject: a}).status)
	require.Equal(t, http.StatusForbidden, f.do(req{method: "GET", path: "/api/v1/transfers?account=" + a, subject: b}).status)
	require.Equal(t, http.StatusBadRequest, f.do(req{method: "GET", path: "/api/v1/transfers", subject: "admin:x", scopes: "admin"}).status)
	r = f.do(req{method: "GET", path: "/api/v1/transfers?limit=500&account=" + a, subject: "admin:x", scopes: "admin"})
	require.Equal(t, http.StatusOK, r.status)
	var all ledgerapi.TransferPage
	require.NoError(t, json.Unmarshal(r.body, &all))
	require.Len(t, all.Transfers, 6, "limit is capped, not refused")
}

func TestBadInputOverHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	a, b := f.agent(10*avt), f.agent(0)
	to := func(extra string) string { return fmt.Sprintf(`{"to":%q%s}`, b, extra) }
	cases := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"no auth", req{body: to(`,"amount_units":5`), key: "x"}, 401, "unauthenticated"},
		{"admin cannot send", req{body: to(`,"amount_units":5`), subject: "admin:x", scopes: "admin", key: "x"}, 403, "forbidden"},
		{"no idempotency key", req{body: to(`,"amount_units":5`), subject: a}, 400, "invalid_argument"},
		{"malformed JSON", req{body: `{"to":`, subject: a, key: "x"}, 400, "invalid_argument"},
		{"unknown field", req{body: to(`,"amount_units":5,"fee":0`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"wrong content type", req{body: to(`,"amount_units":5`), subject: a, key: "x", contentType: "text/plain"}, 400, "invalid_argument"},
		{"missing amount", req{body: to(``), subject: a, key: "x"}, 400, "invalid_argument"},
		{"zero", req{body: to(`,"amount_units":0`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"negative", req{body: to(`,"amount_units":-5`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"fractional units", req{body: to(`,"amount_units":1.5`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"units as string", req{body: to(`,"amount_units":"5"`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"overflowing units", req{body: to(`,"amount_units":99999999999999999999`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"overflowing decimal", req{body: to(`,"amount":"99999999999999"`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"too many decimals", req{body: to(`,"amount":"0.000000001"`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"negative decimal", req{body: to(`,"amount":"-1"`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"both amounts", req{body: to(`,"amount_units":5,"amount":"1"`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"too small for the fee", req{body: to(`,"amount_units":1`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"missing to", req{body: `{"amount_units":5}`, subject: a, key: "x"}, 400, "invalid_argument"},
		{"malformed DID", req{body: `{"to":"did:theprotocol:nope","amount_units":5}`, subject: a, key: "x"}, 400, "invalid_argument"},
		{"unknown DID", req{body: `{"to":"did:theprotocol:` + uuid.NewString() + `","amount_units":5}`, subject: a, key: "x"}, 404, "not_found"},
		{"self transfer", req{body: fmt.Sprintf(`{"to":%q,"amount_units":5}`, a), subject: a, key: "x"}, 400, "invalid_argument"},
		{"from not owned", req{body: fmt.Sprintf(`{"to":%q,"from":%q,"amount_units":5}`, a, b), subject: a, key: "x"}, 403, "forbidden"},
		{"to a system account", req{body: `{"to":"fee_collector","amount_units":5}`, subject: a, key: "x"}, 400, "invalid_argument"},
		{"insufficient funds", req{body: to(`,"amount":"10.00000001"`), subject: a, key: "x"}, 422, "insufficient_funds"},
		{"memo too long", req{body: to(`,"amount_units":500,"memo":"` + strings.Repeat("m", 281) + `"`), subject: a, key: "x"}, 400, "invalid_argument"},
		{"bad key", req{body: to(`,"amount_units":5`), subject: a, key: "bad key!"}, 400, "invalid_argument"},
	}
	before := f.snapshot()
	for _, c := range cases {
		c.r.method, c.r.path = "POST", "/api/v1/transfers"
		c.r.key = strings.ReplaceAll(c.r.key, "x", "x-"+strings.ReplaceAll(c.name, " ", "-"))
		r := f.do(c.r)
		require.Equal(t, c.status, r.status, "%s: %s", c.name, r.body)
		require.Equal(t, c.code, r.errCode(), c.name)
	}
	require.Equal(t, before, f.snapshot(), "bad input writes nothing")
}

func TestHoldsOverHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	a, b, c := f.agent(100*avt), f.agent(0), f.agent(0)
	r := f.do(req{method: "POST", path: "/api/v1/holds", body: fmt.Sprintf(`{"to":%q,"amount":"20","expires_in_seconds":600}`, b), subject: a, key: "h1"})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	var h ledgerapi.HoldResponse
	require.NoError(t, json.Unmarshal(r.body, &h))
	require.Equal(t, "active", h.Status)

	r = f.do(req{method: "GET", path: "/api/v1/agents/" + a + "/balance", subject: a})
	var bal ledgerapi.BalanceResponse
	require.NoError(t, json.Unmarshal(r.body, &bal))
	require.Equal(t, 80*avt, bal.AvailableUnits)
	require.Equal(t, 20*avt, bal.Buckets[0].HeldUnits)

	base := "/api/v1/holds/" + h.ID.String()
	require.Equal(t, http.StatusOK, f.do(req{method: "GET", path: base, subject: b}).status)
	require.Equal(t, http.StatusNotFound, f.do(req{method: "GET", path: base, subject: c}).status)
	require.Equal(t, http.StatusForbidden, f.do(req{method: "POST", path: base + "/post", subject: b, key: "p0"}).status, "the receiver cannot capture")
	require.Equal(t, http.StatusNotFound, f.do(req{method: "POST", path: base + "/void", subject: c, key: "v0"}).status)

	r = f.do(req{method: "POST", path: base + "/post", body: `{"amount_units":1000000000}`, subject: a, key: "p1"})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var ph ledgerapi.PostHoldResponse
	require.NoError(t, json.Unmarshal(r.body, &ph))
	require.Equal(t, "posted", ph.Hold.Status)
	require.Equal(t, 10*avt, ph.Transfer.AmountUnits)
	require.Equal(t, http.StatusUnprocessableEntity, f.do(req{method: "POST", path: base + "/void", subject: a, key: "v1"}).status)

	// Full post with no body; the receiver may void.
	r = f.do(req{method: "POST", path: "/api/v1/holds", body: fmt.Sprintf(`{"to":%q,"amount_units":500}`, b), subject: a, key: "h2"})
	require.Equal(t, http.StatusCreated, r.status)
	require.NoError(t, json.Unmarshal(r.body, &h))
	r = f.do(req{method: "POST", path: "/api/v1/holds/" + h.ID.String() + "/void", subject: b, key: "v2"})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r = f.do(req{method: "POST", path: "/api/v1/holds", body: fmt.Sprintf(`{"to":%q,"amount_units":500}`, b), subject: a, key: "h3"})
	require.NoError(t, json.Unmarshal(r.body, &h))
	r = f.do(req{method: "POST", path: "/api/v1/holds/" + h.ID.String() + "/post", subject: a, key: "p3"})
	require.Equal(t, http.StatusOK, r.status, string(r.body))

	before := f.snapshot()
	for _, c := range []struct {
		body   string
		status int
	}{
		{fmt.Sprintf(`{"to":%q,"amount_units":5,"expires_in_seconds":0}`, b), 400},
		{fmt.Sprintf(`{"to":%q,"amount_units":5,"expires_in_seconds":604801}`, b), 400},
		{fmt.Sprintf(`{"to":%q,"amount_units":-5}`, b), 400},
		{`{"to":"transit:alpha-op1","amount_units":5}`, 400},
		{fmt.Sprintf(`{"to":%q,"amount_units":10000000000000}`, b), 422},
	} {
		r := f.do(req{method: "POST", path: "/api/v1/holds", body: c.body, subject: a, key: "bad-" + uuid.NewString()})
		require.Equal(t, c.status, r.status, "%s: %s", c.body, r.body)
	}
	require.Equal(t, before, f.snapshot())
}

func TestAdminOverHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	a := f.agent(0)
	admin := req{subject: "admin:root", scopes: "admin"}
	mint := admin
	mint.method, mint.path, mint.body, mint.key = "POST", "/api/v1/admin/mint", `{"amount":"1000","reason":"top up"}`, "m1"
	r := f.do(mint)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	r2 := f.do(mint)
	require.True(t, r2.replayed)
	require.Equal(t, r.body, r2.body)

	before := f.snapshot()
	for _, c := range []struct {
		r      req
		status int
	}{
		{req{method: "POST", path: "/api/v1/admin/mint", body: `{"amount":"1","reason":"x"}`, subject: a, key: "m2"}, 403},
		{req{method: "POST", path: "/api/v1/admin/mint", body: `{"amount":"1"}`, subject: "admin:root", scopes: "admin", key: "m3"}, 400},
		{req{method: "POST", path: "/api/v1/admin/mint", body: `{"amount_units":0,"reason":"x"}`, subject: "admin:root", scopes: "admin", key: "m4"}, 400},
		{req{method: "POST", path: "/api/v1/admin/grants", body: `{"to":"did:theprotocol:` + uuid.NewString() + `","amount":"1","reason":"x"}`, subject: "admin:root", scopes: "admin", key: "g0"}, 404},
		{req{method: "POST", path: "/api/v1/admin/grants", body: fmt.Sprintf(`{"to":%q,"amount":"1","reason":"x"}`, a), subject: a, key: "g1"}, 403},
	} {
		r := f.do(c.r)
		require.Equal(t, c.status, r.status, "%+v: %s", c.r, r.body)
	}
	require.Equal(t, before, f.snapshot())

	// A grant moves units from the treasury to the grantee and leaves the
	// supply alone; a burn takes them out of the treasury and out of
	// circulation. Both are checked against what the store reports.
	supply0, treasury0, grantee0 := f.supply(), f.available(ledger.AccountTreasury), f.available(a)
	r = f.do(req{method: "POST", path: "/api/v1/admin/grants", body: fmt.Sprintf(`{"to":%q,"amount":"5","reason":"demo"}`, a), subject: "admin:root", scopes: "admin", key: "g2"})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	require.Equal(t, treasury0-5*avt, f.available(ledger.AccountTreasury), "treasury after grant")
	require.Equal(t, grantee0+5*avt, f.available(a), "grantee after grant")
	require.Equal(t, supply0, f.supply(), "a grant changes no supply total")

	r = f.do(req{method: "POST", path: "/api/v1/admin/burn", body: `{"amount":"5","reason":"cleanup"}`, subject: "admin:root", scopes: "admin", key: "b1"})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	require.Equal(t, treasury0-10*avt, f.available(ledger.AccountTreasury), "treasury after burn")
	require.Equal(t, grantee0+5*avt, f.available(a), "a burn leaves the grantee alone")
	want := supply0
	want.BurnedUnits += 5 * avt
	want.IssuanceUnits += 5 * avt
	want.CirculatingUnits -= 5 * avt
	require.Equal(t, want, f.supply(), "supply after burn")
	require.Equal(t, want.MintedUnits-want.BurnedUnits, want.CirculatingUnits)
	require.Equal(t, -want.IssuanceUnits, want.CirculatingUnits)

	// An on-demand balance checkpoint: admins only.
	r = f.do(req{method: "POST", path: "/api/v1/admin/checkpoints", subject: a, key: "c0"})
	require.Equal(t, http.StatusForbidden, r.status, string(r.body))
	r = f.do(req{method: "POST", path: "/api/v1/admin/checkpoints", subject: "admin:root", scopes: "admin", key: "c1"})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	var cp ledgerapi.CheckpointResponse
	require.NoError(t, json.Unmarshal(r.body, &cp))
	var outboxRows int64
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE event_type <> 'BalanceCheckpoint'`).Scan(&outboxRows))
	require.Equal(t, outboxRows, cp.CoversSeq, "it covers every event written before it")
	require.Len(t, cp.Summary.Digest, 64)
}

// Concurrent duplicates with one Idempotency-Key apply once: one request
// runs, the rest get a 409 "in progress" or the stored response.
func TestConcurrentDuplicateRequestsOverHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	a, b := f.agent(100*avt), f.agent(0)
	body := fmt.Sprintf(`{"to":%q,"amount_units":%d}`, b, avt)
	const n = 20
	out := make([]resp, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = f.do(req{method: "POST", path: "/api/v1/transfers", body: body, subject: a, key: "same"})
		}()
	}
	wg.Wait()
	var created []byte
	for _, r := range out {
		switch r.status {
		case http.StatusCreated:
			if created == nil {
				created = r.body
			}
			require.Equal(t, created, r.body)
		case http.StatusConflict:
			require.Equal(t, "conflict", r.errCode())
		default:
			t.Fatalf("unexpected %d %s", r.status, r.body)
		}
	}
	var count int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM transfers`).Scan(&count))
	require.Equal(t, 1, count)
}
