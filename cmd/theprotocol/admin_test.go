package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAdminSagasListAndReplay runs `admin sagas list|replay` against a
// stand-in for a node's admin API: it logs in with the admin client, lists
// with the state filter and signals the named saga.
func TestAdminSagasListAndReplay(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		switch {
		case r.URL.Path == "/api/v1/auth/token":
			_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "tok"})
		case r.Header.Get("Authorization") != "Bearer tok":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/api/v1/admin/sagas":
			_ = json.NewEncoder(w).Encode(map[string]any{"sagas": []map[string]any{{"workflow_id": "xsettle-a-b-1", "saga_state": "CompensationFailed"}}})
		case r.URL.Path == "/api/v1/admin/sagas/xsettle-a-b-1/replay" && r.Method == http.MethodPost:
			require.NotEmpty(t, r.Header.Get("Idempotency-Key"))
			_ = json.NewEncoder(w).Encode(map[string]string{"workflow_id": "xsettle-a-b-1"})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	creds := filepath.Join(t.TempDir(), "admin.json")
	require.NoError(t, os.WriteFile(creds, []byte(`{"client_id":"c","client_secret":"s"}`), 0o600))

	ctx := context.Background()
	require.NoError(t, runAdmin(ctx, []string{"sagas", "list", "-api", srv.URL, "-credentials", creds, "-state", "CompensationFailed"}))
	require.NoError(t, runAdmin(ctx, []string{"sagas", "replay", "-api", srv.URL, "-credentials", creds, "xsettle-a-b-1"}))
	require.Error(t, runAdmin(ctx, []string{"sagas", "replay", "-api", srv.URL, "-credentials", creds, "xsettle-unknown"}))
	require.Error(t, runAdmin(ctx, []string{"sagas", "replay", "-api", srv.URL, "-credentials", creds}))
	require.Contains(t, seen, "GET /api/v1/admin/sagas?limit=100&state=CompensationFailed")
	require.Contains(t, seen, "POST /api/v1/admin/sagas/xsettle-a-b-1/replay")
}
