package registryapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/registryapi"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/testenv/logbuf"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type node struct {
	URL   string
	H     *registryapi.Handler
	Store *registrystore.Store
	DB    testenv.DB
	Logs  *logbuf.Buffer
	Clock *clock
	Key   ed25519.PrivateKey
}

const testMaxBody = 64 << 10

// startNode runs a registry node (engine + Mount) on a real HTTP listener
// against a fresh database, logging at debug level into node.Logs.
func startNode(t testing.TB, mod func(*registryapi.Options)) *node {
	t.Helper()
	return startNodeEngine(t, mod, api.EngineOptions{})
}

// startNodeEngine is startNode on an engine with eo's settings (its log,
// metrics registry and body limit are the test's).
func startNodeEngine(t testing.TB, mod func(*registryapi.Options), eo api.EngineOptions) *node {
	t.Helper()
	tdb := testenv.NewDB(t, db.RoleRegistry)
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	clk := &clock{t: time.Now().UTC()}
	store := registrystore.New(tdb.Pool, tdb.Name, "alpha", "alpha-main", nil)
	o := registryapi.Options{
		Store: store, Idempotency: db.NewIdempotencyStore(tdb.Pool), SigningKey: key,
		Issuer: "spiffe://alpha.theprotocol.test/registry/alpha-main", Audience: "theprotocol:alpha",
		Now: clk.Now, Log: log,
	}
	if mod != nil {
		mod(&o)
	}
	h, err := registryapi.New(o)
	require.NoError(t, err)
	eo.Log, eo.Registry, eo.MaxBodyBytes = log, prometheus.NewRegistry(), testMaxBody
	e := api.NewEngine(eo)
	h.Mount(e.Group("/api/v1"))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &node{URL: srv.URL, H: h, Store: store, DB: tdb, Logs: logs, Clock: clk, Key: key}
}

type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r resp) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

func (r resp) Str(t testing.TB, key string) string {
	t.Helper()
	v, ok := r.JSON(t)[key].(string)
	require.True(t, ok, "field %q missing in %s", key, r.Body)
	return v
}

// ErrCode returns error.code of an error body ("" if none).
func (r resp) ErrCode(t testing.TB) string {
	t.Helper()
	var b api.ErrorBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		return ""
	}
	return string(b.Error.Code)
}

type req struct {
	Method, Path, Token string
	Body                any // string/[]byte sent raw, others JSON-encoded, nil = no body
	ContentType         string
	Header              map[string]string
}

func (n *node) do(t testing.TB, r req) resp {
	t.Helper()
	var body io.Reader
	switch b := r.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		body = bytes.NewReader(raw)
	}
	hr, err := http.NewRequestWithContext(context.Background(), r.Method, n.URL+r.Path, body)
	require.NoError(t, err)
	if body != nil {
		ct := r.ContentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		hr.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return resp{Status: res.StatusCode, Header: res.Header, Body: raw}
}

// developer signs up and returns its ID, API key and a developer token.
func (n *node) developer(t testing.TB) (id, apiKey, token string) {
	t.Helper()
	u := uuid.NewString()
	r := n.do(t, req{Method: "POST", Path: "/api/v1/developers", Body: map[string]string{"name": "Dev " + u[:8], "email": u + "@example.org"}})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	id, apiKey = r.Str(t, "developer_id"), r.Str(t, "api_key")
	return id, apiKey, n.devToken(t, apiKey)
}

func (n *node) devToken(t testing.TB, apiKey string) string {
	t.Helper()
	r := n.do(t, req{Method: "POST", Path: "/api/v1/auth/token", Body: map[string]string{"grant_type": "api_key", "api_key": apiKey}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	return r.Str(t, "access_token")
}

func (n *node) bootstrap(t testing.TB, devToken string, body any) string {
	t.Helper()
	r := n.do(t, req{Method: "POST", Path: "/api/v1/bootstrap-tokens", Token: devToken, Body: body})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	return r.Str(t, "bootstrap_token")
}

// agent creates an agent with a fresh bootstrap token; returns DID, client
// ID and secret.
func (n *node) agent(t testing.TB, devToken string, card any) (did, clientID, secret string) {
	t.Helper()
	bt := n.bootstrap(t, devToken, nil)
	var body any = map[string]any{}
	if card != nil {
		body = map[string]any{"card": card}
	}
	r := n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt, Body: body})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	return r.Str(t, "did"), r.Str(t, "client_id"), r.Str(t, "client_secret")
}

func (n *node) agentToken(t testing.TB, clientID, secret string) string {
	t.Helper()
	r := n.do(t, req{Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/x-www-form-urlencoded",
		Body: "grant_type=client_credentials&client_id=" + clientID + "&client_secret=" + secret})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	return r.Str(t, "access_token")
}

func card(name string, skills ...string) map[string]any {
	var sk []map[string]any
	for _, s := range skills {
		sk = append(sk, map[string]any{"id": s, "name": "Skill " + s})
	}
	return map[string]any{
		"name": name, "description": "A test agent", "url": "https://agent.example.org/a2a",
		"skills": sk, "payment_terms": map[string]any{"currency": "AVT", "price_per_call_units": 1000},
	}
}

// outboxTypes lists the outbox's event types in order.
func (n *node) outboxTypes(t testing.TB) []string {
	t.Helper()
	rows, err := n.DB.Pool.Query(context.Background(), `SELECT event_type FROM outbox ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	return out
}

func (n *node) countRows(t testing.TB, table string) int {
	t.Helper()
	var c int
	require.NoError(t, n.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&c))
	return c
}
