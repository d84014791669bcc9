package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/theprotocol-dev/theprotocol/sdk/apiclient"
)

// API returns the generated typed client of the whole REST API
// (package apiclient, generated from the OpenAPI document) with this
// client's manners: its base URL, HTTP client and token source (a 401
// refreshes the token once), a fresh Idempotency-Key on every mutating
// call that has none, and retries of transient failures with that same
// key. Error answers come back in the generated Result's JSON4xx fields;
// CheckResult turns them into *APIError.
func (c *Client) API() *apiclient.ClientWithResponses { return c.api(false) }

func (c *Client) api(noAuth bool) *apiclient.ClientWithResponses {
	// NewClient fails only on an unparsable server URL, which every call
	// would then report anyway.
	cl, err := apiclient.NewClientWithResponses(c.BaseURL, apiclient.WithHTTPClient(&transport{c: c, noAuth: noAuth}))
	if err != nil {
		panic(fmt.Sprintf("theprotocol: base URL %q: %v", c.BaseURL, err))
	}
	return cl
}

// Result is what every generated Result (apiclient.GetNodeResult, ...)
// has: the answer's status and body.
type Result interface {
	StatusCode() int
	GetBody() []byte
}

// CheckResult returns err, or the *APIError of a non-2xx answer, or nil:
//
//	res, err := c.API().GetNodeWithResponse(ctx)
//	if err := sdk.CheckResult(res, err); err != nil { ... }
func CheckResult[T any, R interface {
	*T
	Result
}](res R, err error) error {
	if err != nil {
		return err
	}
	if res == nil || res.StatusCode() == 0 {
		return fmt.Errorf("theprotocol: no response")
	}
	if res.StatusCode() < 300 {
		return nil
	}
	return decodeAPIError(res.StatusCode(), res.GetBody())
}

// decodeAPIError reads {"error":{"code","message"}}; a body of another
// shape becomes code http_<status> with the body as message.
func decodeAPIError(status int, body []byte) *APIError {
	var e struct {
		Error APIError `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	e.Error.Status = status
	if e.Error.Code == "" {
		e.Error.Code, e.Error.Message = "http_"+fmt.Sprint(status), strings.TrimSpace(string(body))
	}
	return &e.Error
}

// bearer is a request editor that authenticates one call with token
// instead of the client's token source (bootstrap tokens).
func bearer(token string) apiclient.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

// transport is the generated client's HttpRequestDoer.
type transport struct {
	c      *Client
	noAuth bool
}

func (t *transport) Do(req *http.Request) (*http.Response, error) {
	c, ctx := t.c, req.Context()
	if req.Method != http.MethodGet && req.Header.Get("Idempotency-Key") == "" {
		req.Header.Set("Idempotency-Key", NewIdempotencyKey())
	}
	// A caller-set Authorization (a bootstrap token) is left alone.
	useSource := c.Auth != nil && !t.noAuth && req.Header.Get("Authorization") == ""
	retries := c.Retries
	if retries == 0 {
		retries = 3
	}
	retries = max(retries, 0)
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = 100 * time.Millisecond
	}
	refreshed, refreshNow := false, false
	for attempt := 0; ; attempt++ {
		r := req.Clone(ctx)
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = body
		}
		if useSource {
			tok, err := c.Auth.Token(ctx, refreshNow)
			if err != nil {
				return nil, err
			}
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		refreshNow = false
		resp, err := c.http().Do(r)
		if err == nil {
			if resp.StatusCode == http.StatusUnauthorized && useSource && !refreshed {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				refreshed, refreshNow = true, true
				attempt--
				continue
			}
			if resp.StatusCode < 300 {
				return resp, nil
			}
			body, rerr := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
			resp.Body.Close()
			if rerr != nil {
				return nil, rerr
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			if attempt >= retries || !transient(resp.StatusCode, decodeAPIError(resp.StatusCode, body)) {
				return resp, nil
			}
		} else if attempt >= retries || ctx.Err() != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff << attempt):
		}
	}
}

// decoded returns the generated client's decoding of a 2xx answer, or
// decodes body itself when the generated code left it nil (it decodes only
// answers labelled application/json; some agents' servers label JSON
// otherwise).
func decoded[T any](parsed *T, body []byte) (*T, error) {
	if parsed != nil {
		return parsed, nil
	}
	v := new(T)
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("theprotocol: decode answer: %w", err)
	}
	return v, nil
}
