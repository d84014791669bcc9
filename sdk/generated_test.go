package sdk_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/sdk"
	"github.com/theprotocol-dev/theprotocol/sdk/apiclient"
)

type countingTokens struct {
	mu        sync.Mutex
	refreshes int
}

func (c *countingTokens) Token(_ context.Context, refresh bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if refresh {
		c.refreshes++
	}
	if c.refreshes == 0 {
		return "stale", nil
	}
	return "fresh", nil
}

// The generated client, reached through Client.API, behaves like the
// hand-written one: a refused token is refreshed once, a mutating call
// gets an Idempotency-Key and keeps it across the retries of a transient
// failure, and an error answer becomes an *APIError with its code.
func TestGeneratedClientHasTheSDKsManners(t *testing.T) {
	var mu sync.Mutex
	var keys, auths []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/bootstrap-tokens", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		auths = append(auths, r.Header.Get("Authorization"))
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Header.Get("Authorization") != "Bearer fresh":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthenticated","message":"token expired"}}`))
		case len(keys) < 4:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"try again"}}`))
		default:
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"bootstrap_token":"bt","expires_at":"2030-01-01T00:00:00Z"}`))
		}
	})
	mux.HandleFunc("GET /api/v1/agents/{did}/balance", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"no such account"}}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ts := &countingTokens{}
	c := sdk.New(srv.URL).WithAuth(ts)
	c.Backoff = 1

	res, err := c.API().CreateBootstrapTokenWithResponse(context.Background(), &apiclient.CreateBootstrapTokenParams{IdempotencyKey: "k-1"}, apiclient.BootstrapTokenRequest{})
	require.NoError(t, sdk.CheckResult(res, err))
	require.Equal(t, "bt", res.JSON201.BootstrapToken)
	require.Equal(t, 1, ts.refreshes, "one refresh after the 401")
	require.Equal(t, []string{"Bearer stale", "Bearer fresh", "Bearer fresh", "Bearer fresh"}, auths)
	require.Equal(t, []string{"k-1", "k-1", "k-1", "k-1"}, keys, "one key across the retries")

	_, err = c.Balance(context.Background(), "did:theprotocol:nobody")
	require.True(t, sdk.IsCode(err, "not_found"), "%v", err)
}
