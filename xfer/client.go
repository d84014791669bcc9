package xfer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/payments"
)

// Peer is a peer registry's participant endpoint.
type Peer struct {
	Registry string // registry ID
	BaseURL  string // https://host:port of its mTLS listener
}

// Directory is the live set of peers this TEG can route to (same frame).
// Safe for concurrent use.
type Directory struct {
	mu    sync.RWMutex
	peers map[string]Peer
}

// NewDirectory returns an empty directory.
func NewDirectory() *Directory { return &Directory{peers: map[string]Peer{}} }

// Set adds or replaces a peer.
func (d *Directory) Set(p Peer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.peers[p.Registry] = p
}

// Remove drops a peer.
func (d *Directory) Remove(registry string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.peers, registry)
}

// Get returns the peer with registry ID id.
func (d *Directory) Get(id string) (Peer, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	p, ok := d.peers[id]
	return p, ok
}

// List returns every peer, sorted by registry ID.
func (d *Directory) List() []Peer {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]Peer, 0, len(d.peers))
	for _, p := range d.peers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Registry < out[j].Registry })
	return out
}

// Client calls peers' participant APIs over mTLS.
type Client struct {
	Peers *Directory
	// HTTP must present this node's SVID and verify the peer's (see
	// identity.TLS.HTTPClient).
	HTTP *http.Client
	// Fault, when set (tests), may fail a call before it is sent: op is
	// "prepare", "commit", "abort", "decisions" or "accounts"; after is
	// false. It is called again with after=true once the peer answered,
	// so a test can lose a reply whose call was applied.
	Fault func(op, target string, after bool) error
	// Metrics counts calls by operation, peer and result (nil: not counted).
	Metrics *Metrics
	// Beyond, when set, finds a registry that is not a peer but was
	// reached through a chain of peers' signed listings (federation
	// discovery): it is called directly over mTLS, its TEG identity
	// checked on the handshake like a peer's.
	Beyond func(registry string) (Peer, bool)
}

// peer returns where registry is called: a peer, else a registry of the
// trusted set beyond the peers.
func (c *Client) peer(registry string) (Peer, bool) {
	if p, ok := c.Peers.Get(registry); ok {
		return p, true
	}
	if c.Beyond != nil {
		return c.Beyond(registry)
	}
	return Peer{}, false
}

// Prepare asks target to prepare items.
func (c *Client) Prepare(ctx context.Context, target string, items []Item) ([]Result, error) {
	var out Results
	err := c.call(ctx, "prepare", target, http.MethodPost, PathPrepare, PrepareRequest{Transfers: items}, &out)
	return out.Results, err
}

// Commit asks target to credit prepared transfers, stating the terms
// this coordinator recorded for each.
func (c *Client) Commit(ctx context.Context, target string, items []Item) ([]Result, error) {
	var out Results
	err := c.call(ctx, "commit", target, http.MethodPost, PathCommit, CommitRequest{Transfers: items}, &out)
	return out.Results, err
}

// Abort asks target to drop prepares.
func (c *Client) Abort(ctx context.Context, target string, ids []uuid.UUID) ([]Result, error) {
	var out Results
	err := c.call(ctx, "abort", target, http.MethodPost, PathAbort, IDsRequest{IDs: ids}, &out)
	return out.Results, err
}

// Decisions asks coordinator source for its decisions on ids.
func (c *Client) Decisions(ctx context.Context, source string, ids []uuid.UUID) ([]Decision, error) {
	var out Decisions
	err := c.call(ctx, "decisions", source, http.MethodPost, PathDecisions, IDsRequest{IDs: ids}, &out)
	return out.Decisions, err
}

// AccountExists asks registry whether account lives there.
func (c *Client) AccountExists(ctx context.Context, registry, account string) (bool, error) {
	var out AccountAnswer
	err := c.call(ctx, "accounts", registry, http.MethodGet, PathAccounts+url.PathEscape(account), nil, &out)
	return out.Exists, err
}

// call sends one request and counts its result. Transport failures and
// 5xx answers are apperr.Unavailable (retry); definite refusals keep their
// code (see IsRejection).
func (c *Client) call(ctx context.Context, op, registry, method, path string, body, out any) error {
	err := c.send(ctx, op, registry, method, path, body, out)
	peer := registry
	if _, ok := c.peer(registry); !ok {
		// Not a label value: the name may come from a caller's input.
		peer = "unknown"
	}
	c.Metrics.peerCall(op, peer, err)
	return err
}

func (c *Client) send(ctx context.Context, op, registry, method, path string, body, out any) error {
	p, ok := c.peer(registry)
	if !ok {
		return apperr.New(apperr.NotFound, "registry %q is not a known peer", registry)
	}
	if c.Fault != nil {
		if err := c.Fault(op, registry, false); err != nil {
			return apperr.Wrap(err, apperr.Unavailable, "%s on %s: %v", op, registry, err)
		}
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.BaseURL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "%s on %s: %v", op, registry, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4*MaxBodyBytes))
	if err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "%s on %s: read answer: %v", op, registry, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Error struct {
				Code    apperr.Code `json:"code"`
				Message string      `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &eb)
		re := &remoteError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		code := eb.Error.Code
		if resp.StatusCode >= 500 || code == "" || !IsRejection(re) {
			code = apperr.Unavailable
		}
		return apperr.Wrap(re, code, "%s on %s: %s", op, registry, re.Error())
	}
	if c.Fault != nil {
		if err := c.Fault(op, registry, true); err != nil {
			return apperr.Wrap(err, apperr.Unavailable, "%s on %s: reply lost: %v", op, registry, err)
		}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "%s on %s: malformed answer", op, registry)
	}
	return nil
}

// Router finds the home registry of an account by asking peers and the
// registries discovered beyond them (Candidates), with a cache. An account lives on one
// registry: when more than one claims it, that is a fault for operators
// to resolve (logged at error, counted), and the payment is refused
// rather than sent to whichever registry happens to win.
type Router struct {
	Client *Client
	TTL    time.Duration // positive answers (default 5 min); misses are cached for TTL/10
	Now    func() time.Time
	// Log and Metrics report claims by several registries (nil: silent).
	Log     *slog.Logger
	Metrics *Metrics
	// Candidates, when set, are the registries asked: the peers and the
	// registries of the trusted set beyond them (nil: the peers).
	Candidates func() []Peer

	mu    sync.Mutex
	cache map[string]routeEntry
}

type routeEntry struct {
	registry string
	expires  time.Time
}

// maxRouteCache bounds the cache; it is cleared when full.
const maxRouteCache = 100_000

var _ payments.Router = (*Router)(nil)

// Home returns the peer registry where account lives, or "" when no peer
// has it. Peers are asked in parallel; unreachable peers count as not
// having it (a miss is then not cached, an answer only for TTL/10: the
// peer may claim the account too). More than one registry claiming it is
// apperr.AmbiguousHome, never cached.
func (r *Router) Home(ctx context.Context, account string) (string, error) {
	if r.Client.HTTP == nil {
		// The node's mTLS listener, which gives the client its identity,
		// is not up yet.
		return "", apperr.New(apperr.Unavailable, "the inter-registry listener is not up yet")
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	r.mu.Lock()
	if e, ok := r.cache[account]; ok && now().Before(e.expires) {
		r.mu.Unlock()
		return e.registry, nil
	}
	r.mu.Unlock()

	peers := r.Client.Peers.List()
	if r.Candidates != nil {
		peers = r.Candidates()
	}
	type answer struct {
		registry string
		exists   bool
		err      error
	}
	ch := make(chan answer, len(peers))
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for _, p := range peers {
		go func() {
			ok, err := r.Client.AccountExists(ctx, p.Registry, account)
			ch <- answer{p.Registry, ok, err}
		}()
	}
	var claims []string
	failed := 0
	for range peers {
		a := <-ch
		switch {
		case a.err != nil:
			failed++
		case a.exists:
			claims = append(claims, a.registry)
		}
	}
	if len(claims) > 1 {
		sort.Strings(claims)
		r.Metrics.homeConflict()
		logger(r.Log).Error("account claimed by several registries: payments to it are refused until an operator resolves it",
			"account", account, "registries", claims)
		return "", apperr.New(apperr.AmbiguousHome,
			"account %s is claimed by registries %s: it cannot be paid across registries until an operator resolves the conflict",
			account, strings.Join(claims, ", "))
	}
	home := ""
	if len(claims) == 1 {
		home = claims[0]
	}
	if home == "" && failed > 0 {
		return "", apperr.New(apperr.Unavailable, "could not ask %d peer registries where %s lives", failed, account)
	}
	e := routeEntry{registry: home, expires: now().Add(ttl)}
	if home == "" || failed > 0 {
		e.expires = now().Add(ttl / 10)
	}
	r.mu.Lock()
	if r.cache == nil || len(r.cache) >= maxRouteCache {
		r.cache = map[string]routeEntry{}
	}
	r.cache[account] = e
	r.mu.Unlock()
	return home, nil
}

// String describes a peer (logs).
func (p Peer) String() string { return fmt.Sprintf("%s@%s", p.Registry, p.BaseURL) }

// Remember records that account lives on registry (a discovery answer
// learnt elsewhere, e.g. from an agent card); it expires like a lookup.
func (r *Router) Remember(account, registry string, now time.Time) {
	ttl := r.TTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil || len(r.cache) >= maxRouteCache {
		r.cache = map[string]routeEntry{}
	}
	r.cache[account] = routeEntry{registry: registry, expires: now.Add(ttl)}
}

// Forget drops every cached answer: the peer set or the trusted set
// changed (a peer added, suspended or revoked, a registry reached or lost),
// so earlier answers, found or not, may be wrong.
func (r *Router) Forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache = nil
}
