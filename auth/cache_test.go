package auth_test

import (
	"context"
	"crypto/ed25519"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// A cached token is still checked against the clock on every use.
func TestVerifyCacheHonoursExpiry(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(1_800_000_000)
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	s, v := pair(t, clock)
	tok, claims, err := s.Issue(registry.NewDID(), registry.ScopeAgent, 1)
	require.NoError(t, err)
	for range 3 { // first verifies, the others hit the cache
		got, err := v.Verify(tok)
		require.NoError(t, err)
		require.Equal(t, claims, got)
	}
	now.Store(claims.ExpiresAt)
	_, err = v.Verify(tok)
	require.ErrorIs(t, err, auth.ErrExpired, "expiry applies to cached tokens")

	// Not yet valid (a token from a clock ahead of ours), then valid.
	now.Store(1_800_000_000)
	future, err := s.Sign(registry.Claims{Issuer: iss, Subject: claims.Subject, Audience: aud, IssuedAt: 1_800_000_100,
		NotBefore: 1_800_000_100, ExpiresAt: 1_800_000_900, ID: "f", Scope: registry.ScopeAgent, Registry: "alpha-main", Frame: "alpha", Generation: 1})
	require.NoError(t, err)
	_, err = v.Verify(future)
	require.ErrorIs(t, err, auth.ErrNotYetValid)
	now.Store(1_800_000_100)
	_, err = v.Verify(future)
	require.NoError(t, err)
	now.Store(1_800_000_000)
	_, err = v.Verify(future)
	require.ErrorIs(t, err, auth.ErrNotYetValid, "the window is rechecked on a cache hit")
}

// Only byte-identical tokens are answered from the cache: a token with a
// changed signature or payload is verified (and refused) as usual.
func TestVerifyCacheNeedsExactToken(t *testing.T) {
	t.Parallel()
	s, v := pair(t, time.Now)
	tok, _, err := s.Issue(registry.NewDID(), registry.ScopeAgent, 1)
	require.NoError(t, err)
	_, err = v.Verify(tok)
	require.NoError(t, err)
	last := tok[len(tok)-2]
	flip := byte('A')
	if last == 'A' {
		flip = 'B'
	}
	bad := tok[:len(tok)-2] + string(flip) + tok[len(tok)-1:]
	_, err = v.Verify(bad)
	require.Error(t, err)
	// A second verifier with another key never sees the first one's cache.
	s2, _ := pair(t, time.Now)
	v2, err := auth.NewVerifier(auth.VerifierOptions{Keys: []ed25519.PublicKey{s2.PublicKey()}, Issuer: iss, Audience: aud})
	require.NoError(t, err)
	_, err = v2.Verify(tok)
	require.ErrorIs(t, err, auth.ErrUnknownKey)
}

type countingChecker struct {
	calls   atomic.Int64
	revoked atomic.Bool
}

func (c *countingChecker) CheckToken(context.Context, registry.Claims) error {
	c.calls.Add(1)
	if c.revoked.Load() {
		return auth.ErrRevoked
	}
	return nil
}

// Revocation is checked on every request, cached token or not.
func TestMiddlewareCachedTokenStillRevocable(t *testing.T) {
	t.Parallel()
	s, v := pair(t, time.Now)
	chk := &countingChecker{}
	e := gin.New()
	e.GET("/x", auth.Middleware(v, chk), func(c *gin.Context) { c.String(200, "ok") })
	tok, _, err := s.Issue(registry.NewDID(), registry.ScopeAgent, 1)
	require.NoError(t, err)
	do := func() int {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		e.ServeHTTP(w, r)
		return w.Code
	}
	require.Equal(t, 200, do())
	require.Equal(t, 200, do())
	require.EqualValues(t, 2, chk.calls.Load())
	chk.revoked.Store(true)
	require.Equal(t, 401, do(), "a revoked token is refused even though its signature is cached")
	require.EqualValues(t, 3, chk.calls.Load())
}
