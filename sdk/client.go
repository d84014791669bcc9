// Package sdk is the Go client agents use to reach TheProtocol: a typed
// client of the public REST API (its shapes follow GET
// /api/v1/openapi.json; the generated one is package apiclient, reached
// through Client.API), helpers for
// the common flows — sign up a developer, register agents, keep an access
// token fresh, transfer with automatic Idempotency-Keys and retries, pay
// for a call (PayFor) — and PaymentVerifier, the middleware that puts a
// price on an agent's HTTP endpoint.
//
// The SDK speaks only HTTP to the public API; it shares nothing with the
// server but the payment token format (package paytoken), which it needs
// to verify tokens offline.
package sdk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// APIError is an error answer of the API: its status and
// {"error":{"code","message"}}.
type APIError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("theprotocol: %d %s: %s", e.Status, e.Code, e.Message)
}

// IsCode reports whether err is an APIError with code.
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

// TokenSource returns a bearer token for a request; refresh asks for a new
// one (the previous was refused).
type TokenSource interface {
	Token(ctx context.Context, refresh bool) (string, error)
}

// Client calls one registry's API.
type Client struct {
	BaseURL string       // e.g. http://127.0.0.1:8080
	HTTP    *http.Client // nil: a client with a 30s timeout
	Auth    TokenSource  // nil: unauthenticated calls only
	// Retries is how often a failed mutating call is retried with the same
	// Idempotency-Key (network errors, 409 in flight, 429, 503); 0 means 3,
	// negative none.
	Retries int
	// Backoff is the first retry's delay, doubled each time (0: 100ms).
	Backoff time.Duration

	offers *sync.Map // PayFor's last offer per endpoint (nil: none kept)
	// a2aHTTP carries A2A calls (SendMessage) when they need another
	// transport than the registry's: mutual TLS (A2AAuthenticator.A2AClient).
	a2aHTTP *http.Client
}

// New returns a client of the API at baseURL.
func New(baseURL string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), offers: &sync.Map{}}
}

// WithAuth returns a copy of c that authenticates with ts.
func (c *Client) WithAuth(ts TokenSource) *Client {
	cp := *c
	cp.Auth = ts
	cp.offers = &sync.Map{}
	return &cp
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// NewIdempotencyKey returns a random key (128 bits, hex).
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// callOpts tune one call.
type callOpts struct {
	idemKey string // "" for GETs; mutating calls get one automatically
	bearer  string // overrides Auth (bootstrap tokens)
	noAuth  bool
}

// Do sends method path with body (JSON, nil for none) and decodes a 2xx
// answer into out (nil to discard). Mutating calls carry an
// Idempotency-Key (fresh per Do) and are retried with it on transient
// failures; a 401 refreshes the token once.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	o := callOpts{}
	if method != http.MethodGet {
		o.idemKey = NewIdempotencyKey()
	}
	return c.do(ctx, method, path, body, out, o)
}

// DoWithKey is Do with the caller's Idempotency-Key (to retry across
// process restarts).
func (c *Client) DoWithKey(ctx context.Context, method, path, key string, body, out any) error {
	return c.do(ctx, method, path, body, out, callOpts{idemKey: key})
}

func (c *Client) do(ctx context.Context, method, path string, body, out any, o callOpts) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return fmt.Errorf("theprotocol: encode request: %w", err)
		}
	}
	retries := c.Retries
	if retries == 0 {
		retries = 3
	}
	if retries < 0 || (method == http.MethodPost && o.idemKey == "") {
		retries = 0 // never retry a POST without a key
	}
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = 100 * time.Millisecond
	}
	refreshed := false
	for attempt := 0; ; attempt++ {
		status, err := c.once(ctx, method, path, raw, out, o, refreshed)
		if status == http.StatusUnauthorized && !refreshed && c.Auth != nil && o.bearer == "" && !o.noAuth {
			refreshed = true
			attempt--
			continue
		}
		if err == nil || attempt >= retries || !transient(status, err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff << attempt):
		}
	}
}

func transient(status int, err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return true // network
	}
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	case http.StatusConflict:
		return ae.Code == "conflict" && strings.Contains(ae.Message, "in flight")
	}
	return false
}

func (c *Client) once(ctx context.Context, method, path string, raw []byte, out any, o callOpts, refresh bool) (int, error) {
	var rd io.Reader
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return 0, err
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if o.idemKey != "" {
		req.Header.Set("Idempotency-Key", o.idemKey)
	}
	switch {
	case o.bearer != "":
		req.Header.Set("Authorization", "Bearer "+o.bearer)
	case c.Auth != nil && !o.noAuth:
		tok, err := c.Auth.Token(ctx, refresh)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, decodeAPIError(resp.StatusCode, body)
	}
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("theprotocol: decode %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// ClientCredentials is a TokenSource exchanging an agent's (or admin's)
// client credentials at POST /auth/token, caching the token until shortly
// before it expires.
type ClientCredentials struct {
	Client       *Client // unauthenticated client of the issuing registry
	ClientID     string
	ClientSecret string

	mu  sync.Mutex
	tok string
	exp time.Time
}

// Token returns the cached token or a new one.
func (s *ClientCredentials) Token(ctx context.Context, refresh bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !refresh && s.tok != "" && time.Now().Before(s.exp) {
		return s.tok, nil
	}
	var out TokenResponse
	err := s.Client.do(ctx, http.MethodPost, "/api/v1/auth/token", map[string]string{
		"grant_type": "client_credentials", "client_id": s.ClientID, "client_secret": s.ClientSecret,
	}, &out, callOpts{noAuth: true})
	if err != nil {
		return "", err
	}
	s.tok = out.AccessToken
	// Refresh a little early (a tenth of the lifetime) so a token never
	// expires in flight.
	s.exp = time.Now().Add(time.Duration(out.ExpiresIn) * time.Second * 9 / 10)
	return s.tok, nil
}

// APIKey is a TokenSource for a developer's API key.
type APIKey struct {
	Client *Client
	Key    string

	mu  sync.Mutex
	tok string
	exp time.Time
}

// Token returns the cached token or a new one.
func (s *APIKey) Token(ctx context.Context, refresh bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !refresh && s.tok != "" && time.Now().Before(s.exp) {
		return s.tok, nil
	}
	var out TokenResponse
	err := s.Client.do(ctx, http.MethodPost, "/api/v1/auth/token", map[string]string{"grant_type": "api_key", "api_key": s.Key}, &out, callOpts{noAuth: true})
	if err != nil {
		return "", err
	}
	s.tok, s.exp = out.AccessToken, time.Now().Add(time.Duration(out.ExpiresIn)*time.Second*9/10)
	return s.tok, nil
}
