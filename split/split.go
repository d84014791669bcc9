// Package split lets one registry's roles run in separate processes. The
// registry, the TEG and the EventStore of a registry each keep their own
// database; what one role asked another in-process it asks here over the
// registry's mTLS listeners instead:
//
//   - the registry asks its TEG to open accounts and to lock or void a
//     reputation bond (the onboarding saga's ledger steps: TEGClient, served
//     by TEGServer);
//   - the EventStore asks its TEG for a dispute and to slash a stake (the
//     dispute enforcer and the reputation slasher react to the frame's
//     events there);
//   - the TEG asks its registry to authenticate a bearer token (the public
//     ledger API's authentication) and for an agent's state (the bond
//     workflow's check): RegistryClient, served by RegistryServer.
//
// Every endpoint admits exactly one caller, the registry's own SPIFFE ID
// (its processes share it): peers of the same trust domain, which the
// listener also admits, are refused. Every call is idempotent (accounts on
// their ID, bond moves on their key), so a caller retries freely.
package split

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/identity"
)

// Paths on the mTLS listener.
const (
	PathAccounts     = "/internal/v1/split/teg/accounts"
	PathBondLock     = "/internal/v1/split/teg/bonds/lock"
	PathBondVoid     = "/internal/v1/split/teg/bonds/void"
	PathBonds        = "/internal/v1/split/teg/bonds/"
	PathDisputes     = "/internal/v1/split/teg/disputes/"
	PathSlashes      = "/internal/v1/split/teg/slashes"
	PathAuthenticate = "/internal/v1/split/registry/authenticate"
	PathAgents       = "/internal/v1/split/registry/agents/"
)

// maxBody bounds request and answer bodies: every message is a few fields.
const maxBody = 64 << 10

// Admit reports whether caller may use the split endpoints of self: only
// the registry's own identity may (a pure rule, so it is tested alone).
func Admit(self, caller spiffeid.ID) bool {
	return !self.IsZero() && caller == self
}

// admitted checks the request's verified client SVID against self and
// writes the refusal when it does not match.
func admitted(w http.ResponseWriter, r *http.Request, self spiffeid.ID) bool {
	caller, err := identity.PeerID(r.TLS)
	if err != nil {
		writeErr(w, apperr.New(apperr.Forbidden, "no verified client SVID"))
		return false
	}
	if !Admit(self, caller) {
		writeErr(w, apperr.New(apperr.Forbidden, "%s is not admitted: the split-role API serves only %s", caller, self))
		return false
	}
	return true
}

type errorBody struct {
	Error struct {
		Code    apperr.Code `json:"code"`
		Message string      `json:"message"`
	} `json:"error"`
}

// statusOf maps the codes the split endpoints answer with.
func statusOf(code apperr.Code) int {
	switch code {
	case apperr.Invalid:
		return http.StatusBadRequest
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict, apperr.IdempotencyReuse:
		return http.StatusConflict
	case apperr.Unauthenticated:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.InsufficientFunds, apperr.FailedPrecondition:
		return http.StatusUnprocessableEntity
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeErr(w http.ResponseWriter, err error) {
	code := apperr.CodeOf(err)
	var b errorBody
	b.Error.Code, b.Error.Message = code, apperr.MessageOf(err)
	writeJSON(w, statusOf(code), b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a bounded JSON body with no unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apperr.New(apperr.Invalid, "malformed request: %v", err)
	}
	return nil
}

// caller is the client half shared by TEGClient and RegistryClient: a base
// URL and an mTLS client that arrives once the process has its SVID.
type caller struct {
	base string
	http atomic.Pointer[http.Client]
}

// Arm gives the client its mTLS HTTP client (authenticating the server as
// the registry's own identity). Until then every call is Unavailable.
func (c *caller) Arm(cl *http.Client) { c.http.Store(cl) }

// PathWhoAmI is every mTLS listener's identity echo, which Ping calls.
const PathWhoAmI = "/internal/v1/whoami"

// Ping reports whether the other process answers on its mTLS listener
// with the registry's identity (the readiness check).
func (c *caller) Ping(ctx context.Context) error {
	var out struct {
		Node string `json:"node"`
	}
	return c.do(ctx, "other role's process", http.MethodGet, PathWhoAmI, nil, nil, &out)
}

// do sends one request. Transport failures, 5xx answers and refusals of
// this process's identity (a deployment fault, not the user's) are
// Unavailable; other refusals keep their code.
func (c *caller) do(ctx context.Context, role, method, path string, header http.Header, body, out any) error {
	cl := c.http.Load()
	if cl == nil {
		return apperr.New(apperr.Unavailable, "no mTLS identity yet to reach the %s", role)
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "build request to the %s", role)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cl.Do(req)
	if err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "the %s is unreachable: %v", role, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "read the %s's answer: %v", role, err)
	}
	if resp.StatusCode != http.StatusOK {
		return remoteErr(role, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "malformed answer from the %s", role)
	}
	return nil
}

// remoteErr turns an error answer into an apperr. Only definite business
// answers keep their code: anything else may be retried.
func remoteErr(role string, status int, raw []byte) error {
	var eb errorBody
	_ = json.Unmarshal(raw, &eb)
	code, msg := eb.Error.Code, eb.Error.Message
	keep := status < 500 && code != "" && statusOf(code) == status && code != apperr.Forbidden && code != apperr.Unavailable
	if !keep {
		return apperr.New(apperr.Unavailable, "the %s answered %d %s: %s", role, status, code, msg)
	}
	return apperr.New(code, "%s", msg)
}

// checkBase reports a base URL that is not https.
func checkBase(base string) error {
	if len(base) < len("https://x") || base[:8] != "https://" {
		return fmt.Errorf("split: %q is not an https base URL", base)
	}
	return nil
}
