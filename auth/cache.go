package auth

import (
	"container/list"
	"sync"

	"github.com/theprotocol-dev/theprotocol/registry"
)

// DefaultTokenCacheSize is how many verified tokens a Verifier remembers
// unless VerifierOptions.CacheSize says otherwise.
const DefaultTokenCacheSize = 8192

// tokenCache remembers the claims of tokens whose signature, shape, issuer,
// audience and claims already verified, keyed by the exact token string, so
// a client presenting the same token again skips the Ed25519 verification
// and the JSON decoding. Only immutable facts are cached: the validity
// window is checked against the clock on every hit, and revocation is the
// StateChecker's job on every request, cached or not. A Verifier's keys
// never change, so an entry cannot outlive the key that signed it. Bounded:
// least recently used entries are evicted.
type tokenCache struct {
	mu    sync.Mutex
	max   int
	items map[string]*list.Element
	order list.List // front = most recently used; values are *tokenEntry
}

type tokenEntry struct {
	token  string
	claims registry.Claims
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, items: make(map[string]*list.Element, max)}
}

func (c *tokenCache) get(token string) (registry.Claims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[token]
	if !ok {
		return registry.Claims{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*tokenEntry).claims, true
}

func (c *tokenCache) put(token string, claims registry.Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[token]; ok {
		c.order.MoveToFront(e)
		return
	}
	if c.order.Len() >= c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*tokenEntry).token)
	}
	c.items[token] = c.order.PushFront(&tokenEntry{token: token, claims: claims})
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
