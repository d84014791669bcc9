package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// call is one HTTP request's outcome. Code is the API's error code on a
// refusal, "transport" when no answer came, "" on success.
type call struct {
	Status int
	Code   string
	Body   []byte
}

// definitive reports whether the answer settles the request: a success or
// a refusal the server stored (4xx other than 429 and 409 conflict).
// Transport failures, 429, 5xx and "a request with this key is still in
// progress" (409 conflict) leave the outcome unknown; the request is
// retried with the same Idempotency-Key, which replays the first outcome
// if there was one.
func (c call) definitive() bool {
	return c.Code != "transport" && c.Code != "conflict" && c.Status != http.StatusTooManyRequests && c.Status < 500
}

func (c call) decode(out any) error {
	if err := json.Unmarshal(c.Body, out); err != nil {
		return fmt.Errorf("decode %d answer: %w: %.200s", c.Status, err, c.Body)
	}
	return nil
}

func (c call) err(what string) error {
	return fmt.Errorf("%s: %d %s: %.300s", what, c.Status, c.Code, c.Body)
}

// client sends the simulation's requests and records their latency and
// error codes under an operation kind.
type client struct {
	http  *http.Client
	stats *Stats
	// retryFor bounds how long a request with an unknown outcome is
	// retried (node restarts under -chaos take seconds).
	retryFor time.Duration
}

// idemKey is a fresh Idempotency-Key, long enough for anonymous sign-up.
func idemKey() string { return uuid.NewString() + uuid.NewString() }

// once sends one request. key "" sends none.
func (cl *client) once(ctx context.Context, kind, method, url, token, key string, body any) call {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return call{Code: "encode", Body: []byte(err.Error())}
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return call{Code: "transport", Body: []byte(err.Error())}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	start := time.Now()
	resp, err := cl.http.Do(req)
	if err != nil {
		cl.stats.Error(kind, "transport")
		return call{Code: "transport", Body: []byte(err.Error())}
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	res := call{Status: resp.StatusCode, Body: raw}
	if err != nil {
		res.Code = "transport"
	} else if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			res.Code = e.Error.Code
		} else {
			res.Code = "http_" + strconv.Itoa(resp.StatusCode)
		}
	}
	if res.Code == "" {
		cl.stats.Observe(kind, time.Since(start))
	} else {
		cl.stats.Error(kind, res.Code)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			sleep(ctx, time.Duration(s)*time.Second)
		}
	}
	return res
}

// do sends a request until its outcome is known: every attempt carries the
// same Idempotency-Key (a mutating request always has one), so a retry
// never applies it twice. It gives up after retryFor (or when ctx ends),
// returning the last, indefinite answer.
func (cl *client) do(ctx context.Context, kind, method, url, token, key string, body any) call {
	deadline := time.Now().Add(cl.retryFor)
	backoff := 50 * time.Millisecond
	for {
		res := cl.once(ctx, kind, method, url, token, key, body)
		if res.definitive() || time.Now().After(deadline) || ctx.Err() != nil {
			return res
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// errIndefinite marks an operation whose outcome stayed unknown.
var errIndefinite = errors.New("outcome unknown")
