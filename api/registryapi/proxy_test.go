package registryapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/registryapi"
)

// The per-address limit of the unauthenticated routes counts the TCP peer
// unless the peer is a trusted proxy; only then does X-Forwarded-For name
// the client.
func TestAddressLimitAndTrustedProxies(t *testing.T) {
	t.Parallel()
	limit := func(o *registryapi.Options) {
		o.RateLimits.PerAddress = registryapi.RateLimit{Interval: time.Hour, Burst: 3}
	}
	// A malformed token request still spends the caller's address bucket
	// (the limit runs first), and touches no credential.
	tokenFrom := func(n *node, forwarded string) int {
		h := map[string]string{}
		if forwarded != "" {
			h["X-Forwarded-For"] = forwarded
		}
		return n.do(t, req{Method: "POST", Path: "/api/v1/auth/token", Body: map[string]string{"grant_type": "password"}, Header: h}).Status
	}
	spoofed := []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"}

	t.Run("no trusted proxy: the header is ignored", func(t *testing.T) {
		t.Parallel()
		n := startNodeEngine(t, limit, api.EngineOptions{})
		for _, ip := range spoofed[:3] {
			require.NotEqual(t, http.StatusTooManyRequests, tokenFrom(n, ip))
		}
		require.Equal(t, http.StatusTooManyRequests, tokenFrom(n, spoofed[3]), "a fresh X-Forwarded-For is no fresh bucket")
	})

	t.Run("a proxy that is not the peer is not trusted", func(t *testing.T) {
		t.Parallel()
		n := startNodeEngine(t, limit, api.EngineOptions{TrustedProxies: []string{"10.0.0.0/8"}})
		for _, ip := range spoofed[:3] {
			require.NotEqual(t, http.StatusTooManyRequests, tokenFrom(n, ip))
		}
		require.Equal(t, http.StatusTooManyRequests, tokenFrom(n, spoofed[3]))
	})

	t.Run("trusted proxy: one bucket per forwarded client", func(t *testing.T) {
		t.Parallel()
		// The test's requests come from 127.0.0.1: the trusted proxy.
		n := startNodeEngine(t, limit, api.EngineOptions{TrustedProxies: []string{"127.0.0.1", "::1"}})
		for _, ip := range spoofed {
			require.NotEqual(t, http.StatusTooManyRequests, tokenFrom(n, ip), "client %s has its own bucket", ip)
		}
		// One client behind the proxy is still limited, and a client
		// cannot escape by prepending addresses: the proxy appends the
		// peer it saw, the rightmost untrusted entry is the client.
		for range 2 {
			require.NotEqual(t, http.StatusTooManyRequests, tokenFrom(n, "203.0.113.9"))
		}
		require.NotEqual(t, http.StatusTooManyRequests, tokenFrom(n, "192.0.2.77, 203.0.113.9"))
		require.Equal(t, http.StatusTooManyRequests, tokenFrom(n, "192.0.2.78, 203.0.113.9"))
		// Without the header, the proxy's own address is the client.
		for range 3 {
			require.NotEqual(t, http.StatusTooManyRequests, tokenFrom(n, ""))
		}
		require.Equal(t, http.StatusTooManyRequests, tokenFrom(n, ""))
	})
}
