package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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
	missingKey := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		switch {
		case r.URL.Path == "/api/v1/auth/token":
			_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "tok"})
		case r.Header.Get("Authorization") != "Bearer tok":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/api/v1/admin/sagas" && r.URL.Query().Get("cursor") == "":
			// Two pages: the command must follow next_cursor.
			_ = json.NewEncoder(w).Encode(map[string]any{
				"sagas": []map[string]any{{
					"workflow_id": "xsettle-a-b-1", "saga_state": "CompensationFailed", "status": "Running",
					"target_registry": "beta-main", "transfer_ids": []string{"t1", "t2"}, "started_at": "2026-01-02T03:04:05Z",
				}},
				"next_cursor": "p2",
			})
		case r.URL.Path == "/api/v1/admin/sagas" && r.URL.Query().Get("cursor") == "p2":
			_ = json.NewEncoder(w).Encode(map[string]any{"sagas": []map[string]any{{
				"workflow_id": "xsettle-a-c-7", "saga_state": "CompensationFailed", "status": "Running",
				"target_registry": "gamma-main", "transfer_ids": []string{"t3"}, "started_at": "2026-01-02T04:00:00Z",
			}}})
		case r.URL.Path == "/api/v1/admin/sagas/xsettle-a-b-1/replay" && r.Method == http.MethodPost:
			// Only the test goroutine may fail the test: record the header
			// and refuse the request, the test checks both.
			if r.Header.Get("Idempotency-Key") == "" {
				mu.Lock()
				missingKey++
				mu.Unlock()
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"workflow_id": "xsettle-a-b-1"})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	creds := filepath.Join(t.TempDir(), "admin.json")
	require.NoError(t, os.WriteFile(creds, []byte(`{"client_id":"c","client_secret":"s"}`), 0o600))

	ctx := context.Background()
	out := captureStdout(t, func() error {
		return runAdmin(ctx, []string{"sagas", "list", "-api", srv.URL, "-credentials", creds, "-state", "CompensationFailed"})
	})
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, 3, out)
	require.Equal(t, []string{"WORKFLOW", "ID", "SAGA", "STATE", "STATUS", "TARGET", "TRANSFERS", "STARTED"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"xsettle-a-b-1", "CompensationFailed", "Running", "beta-main", "2", "2026-01-02T03:04:05Z"}, strings.Fields(lines[1]))
	require.Equal(t, []string{"xsettle-a-c-7", "CompensationFailed", "Running", "gamma-main", "1", "2026-01-02T04:00:00Z"}, strings.Fields(lines[2]))

	out = captureStdout(t, func() error {
		return runAdmin(ctx, []string{"sagas", "replay", "-api", srv.URL, "-credentials", creds, "xsettle-a-b-1"})
	})
	require.Contains(t, out, "xsettle-a-b-1")
	require.Error(t, runAdmin(ctx, []string{"sagas", "replay", "-api", srv.URL, "-credentials", creds, "xsettle-unknown"}))
	require.Error(t, runAdmin(ctx, []string{"sagas", "replay", "-api", srv.URL, "-credentials", creds}))
	mu.Lock()
	defer mu.Unlock()
	require.Zero(t, missingKey, "replay sent without an Idempotency-Key")
	require.Contains(t, seen, "GET /api/v1/admin/sagas?limit=100&state=CompensationFailed")
	require.Contains(t, seen, "GET /api/v1/admin/sagas?cursor=p2&limit=100&state=CompensationFailed")
	require.Contains(t, seen, "POST /api/v1/admin/sagas/xsettle-a-b-1/replay")
}

// captureStdout runs fn with os.Stdout redirected and returns what it wrote;
// fn must succeed. The test is not parallel, so nothing else writes there.
func captureStdout(t *testing.T, fn func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	orig := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	runErr := fn()
	os.Stdout = orig
	require.NoError(t, w.Close())
	out := <-done
	require.NoError(t, r.Close())
	require.NoError(t, runErr)
	return string(out)
}
