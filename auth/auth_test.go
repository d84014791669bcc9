package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/registry"
)

const (
	iss = "spiffe://alpha.theprotocol.test/registry/alpha-main"
	aud = "theprotocol:alpha"
)

func pair(t testing.TB, now func() time.Time) (*auth.Signer, *auth.Verifier) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	s, err := auth.NewSigner(auth.SignerOptions{Key: key, Issuer: iss, Audience: aud, Registry: "alpha-main", Frame: "alpha", Now: now})
	require.NoError(t, err)
	v, err := auth.NewVerifier(auth.VerifierOptions{Keys: []ed25519.PublicKey{s.PublicKey()}, Issuer: iss, Audience: aud, Now: now})
	require.NoError(t, err)
	return s, v
}

func TestIssueVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	s, v := pair(t, clock)
	did := registry.NewDID()
	tok, claims, err := s.Issue(did, registry.ScopeAgent, 3)
	require.NoError(t, err)
	require.Less(t, len(tok), 1024)
	got, err := v.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, claims, got)
	require.Equal(t, did, got.Subject)
	require.EqualValues(t, 3, got.Generation)
	require.Equal(t, int64(15*60), got.ExpiresAt-got.IssuedAt, "default TTL is 15 minutes")

	now = now.Add(15 * time.Minute)
	_, err = v.Verify(tok)
	require.ErrorIs(t, err, auth.ErrExpired)

	// Key rotation: a verifier holding the old key still accepts its tokens.
	s2, _ := pair(t, func() time.Time { return time.Unix(1_800_000_000, 0) })
	tok2, _, err := s2.Issue(did, registry.ScopeAgent, 1)
	require.NoError(t, err)
	v2, err := auth.NewVerifier(auth.VerifierOptions{Keys: []ed25519.PublicKey{s.PublicKey(), s2.PublicKey()}, Issuer: iss, Audience: aud, Now: func() time.Time { return time.Unix(1_800_000_001, 0) }})
	require.NoError(t, err)
	_, err = v2.Verify(tok2)
	require.NoError(t, err)
	require.Len(t, v2.JWKS(), 2)

	// Refuses to sign claims that would not verify.
	_, _, err = s.Issue(did, registry.ScopeAdmin, 1)
	require.Error(t, err)
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	a, ha := auth.NewSecret(auth.PrefixClientSecret)
	b, _ := auth.NewSecret(auth.PrefixClientSecret)
	require.NotEqual(t, a, b)
	require.True(t, auth.ValidSecretShape(a, auth.PrefixClientSecret))
	require.True(t, auth.SecretMatches(a, ha))
	require.False(t, auth.SecretMatches(b, ha))
	require.False(t, auth.SecretMatches(a, ha[:31]))
	require.False(t, auth.SecretMatches(a, nil))

	k := auth.NewAPIKey()
	id, ok := auth.APIKeyID(k.Clear)
	require.True(t, ok)
	require.Equal(t, k.ID, id)
	require.True(t, auth.SecretMatches(k.Clear, k.Hash))
	for _, bad := range []string{"", "tpk_", k.ID, k.ID + ".", "tpk_XYZ." + strings.Repeat("a", 43), k.Clear + "x", strings.Replace(k.Clear, ".", "!", 1)} {
		_, ok := auth.APIKeyID(bad)
		require.False(t, ok, bad)
	}
	h := auth.NewHandle(auth.PrefixClientID)
	require.True(t, auth.ValidHandle(h, auth.PrefixClientID))
	require.False(t, auth.ValidHandle(h, auth.PrefixAdminClientID))
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	l := auth.NewLimiter(time.Second, 3, 4, func() time.Time { return now })
	for range 3 {
		ok, _ := l.Allow("k")
		require.True(t, ok)
	}
	ok, wait := l.Allow("k")
	require.False(t, ok)
	require.Equal(t, time.Second, wait)
	ok, _ = l.Allow("other")
	require.True(t, ok, "keys are independent")
	now = now.Add(time.Second)
	ok, _ = l.Allow("k")
	require.True(t, ok, "one request per interval after the burst")
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		l.Allow(k)
	}
	require.LessOrEqual(t, l.Len(), 4, "tracked keys are capped")
}

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys", "signing.pem")
	k1, err := auth.LoadOrCreateKey(path)
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	k2, err := auth.LoadOrCreateKey(path)
	require.NoError(t, err)
	require.True(t, k1.Equal(k2), "the key persists")
	require.NoError(t, os.Chmod(path, 0o644))
	_, err = auth.LoadOrCreateKey(path)
	require.ErrorContains(t, err, "chmod 600")

	d1, err := auth.DeriveKey(k1, "a")
	require.NoError(t, err)
	d2, err := auth.DeriveKey(k1, "b")
	require.NoError(t, err)
	require.Len(t, d1, 32)
	require.NotEqual(t, d1, d2)
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	s, v := pair(t, time.Now)
	e := gin.New()
	e.GET("/x", auth.Middleware(v, nil), api.RequireScope(registry.ScopeDeveloper), func(c *gin.Context) {
		p, _ := api.PrincipalFrom(c)
		c.String(200, p.Subject)
	})
	devSub := registry.DeveloperSubject([16]byte{1})
	tok, _, err := s.Issue(devSub, registry.ScopeDeveloper, 1)
	require.NoError(t, err)
	agentTok, _, err := s.Issue(registry.NewDID(), registry.ScopeAgent, 1)
	require.NoError(t, err)
	for _, tc := range []struct {
		header string
		status int
	}{
		{"Bearer " + tok, 200},
		{"bearer " + tok, 200},
		{"", 401},
		{"Bearer", 401},
		{"Token " + tok, 401},
		{"Bearer " + tok + "x", 401},
		{"Bearer " + agentTok, 403},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/x", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		e.ServeHTTP(w, r)
		require.Equal(t, tc.status, w.Code, "%q: %s", tc.header, w.Body)
		if tc.status == 200 {
			require.Equal(t, devSub, w.Body.String())
		}
	}
	require.Equal(t, apperr.Unauthenticated, apperr.CodeOf(auth.ErrRevoked))
}

// BenchmarkVerify is the cryptographic cost of authenticating one request:
// parse, Ed25519 signature check, claims decode and checks (no cache).
func BenchmarkVerify(b *testing.B) {
	s, _ := pair(b, time.Now)
	v, err := auth.NewVerifier(auth.VerifierOptions{Keys: []ed25519.PublicKey{s.PublicKey()}, Issuer: iss, Audience: aud, CacheSize: -1})
	require.NoError(b, err)
	tok, _, err := s.Issue(registry.NewDID(), registry.ScopeAgent, 1)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached is a repeated token answered from the cache.
func BenchmarkVerifyCached(b *testing.B) {
	s, v := pair(b, time.Now)
	tok, _, err := s.Issue(registry.NewDID(), registry.ScopeAgent, 1)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel is BenchmarkVerifyCached on every core.
func BenchmarkVerifyParallel(b *testing.B) {
	s, v := pair(b, time.Now)
	tok, _, err := s.Issue(registry.NewDID(), registry.ScopeAgent, 1)
	require.NoError(b, err)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIssue is the cost of signing one token.
func BenchmarkIssue(b *testing.B) {
	s, _ := pair(b, time.Now)
	did := registry.NewDID()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Issue(did, registry.ScopeAgent, 1); err != nil {
			b.Fatal(err)
		}
	}
}
