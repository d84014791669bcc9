package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/testenv/logbuf"
)

// /readyz names a failed dependency and nothing of its connection: the
// probe is unauthenticated. The detail is logged for the operator.
func TestReadyzHidesConnectionDetails(t *testing.T) {
	t.Parallel()
	secret := `failed to connect to host=db-7.internal.example user=ledger_owner database=teg_alpha: dial tcp 10.9.8.7:5432: connect: connection refused (pgx driver)`
	logs := &logbuf.Buffer{}
	e := api.NewEngine(api.EngineOptions{
		Log: slog.New(slog.NewTextHandler(logs, nil)), Registry: prometheus.NewRegistry(), MaxBodyBytes: 1 << 10,
		Checks: []api.Check{
			{Name: "postgres", Fn: func(context.Context) error { return errors.New(secret) }},
			{Name: "kafka", Fn: func(context.Context) error { return nil }},
		},
	})
	rec, _ := do(t, e, "GET", "/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
		Error  struct{ Code, Message string }
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Equal(t, "unavailable", body.Status)
	require.Equal(t, map[string]string{"postgres": "error", "kafka": "ok"}, body.Checks)
	require.Equal(t, "unavailable", body.Error.Code)
	require.Contains(t, body.Error.Message, "postgres")
	for _, leak := range []string{"db-7", "internal.example", "ledger_owner", "teg_alpha", "10.9.8.7", "5432", "pgx", "refused"} {
		require.NotContains(t, rec.Body.String(), leak)
	}
	require.Contains(t, logs.String(), "10.9.8.7:5432", "the operator gets the detail in the log")
	require.Contains(t, logs.String(), "check=postgres")
}
