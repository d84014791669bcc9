package xfer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestPeerCallsAreCountedByResult: a prepare the peer answers counts ok, a
// definite refusal (4xx) refused, a 5xx unavailable, and a call naming a
// registry outside the directory counts under "unknown" so a caller's
// input never becomes a label value.
func TestPeerCallsAreCountedByResult(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch status {
		case http.StatusOK:
			_, _ = w.Write([]byte(`{"results":[]}`))
		case http.StatusBadRequest:
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":{"code":"invalid","message":"bad terms"}}`))
		default:
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"down"}}`))
		}
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	dir := NewDirectory()
	dir.Set(Peer{Registry: "beta", BaseURL: srv.URL})
	c := &Client{Peers: dir, HTTP: srv.Client(), Metrics: m}
	ctx := context.Background()
	items := []Item{{ID: uuid.New(), From: "a", To: "b", AmountUnits: 1, Currency: "AVT"}}

	_, err := c.Prepare(ctx, "beta", items)
	require.NoError(t, err)
	status = http.StatusBadRequest
	_, err = c.Prepare(ctx, "beta", items)
	require.Error(t, err)
	status = http.StatusServiceUnavailable
	_, err = c.Prepare(ctx, "beta", items)
	require.Error(t, err)
	_, err = c.Commit(ctx, "beta", items)
	require.Error(t, err)
	_, err = c.Prepare(ctx, "no-such-registry", items)
	require.Error(t, err)

	count := func(op, peer, result string) float64 {
		return testutil.ToFloat64(m.peerCalls.WithLabelValues(op, peer, result))
	}
	require.Equal(t, 1.0, count("prepare", "beta", CallOK))
	require.Equal(t, 1.0, count("prepare", "beta", CallRefused))
	require.Equal(t, 1.0, count("prepare", "beta", CallUnavailable))
	require.Equal(t, 1.0, count("commit", "beta", CallUnavailable))
	require.Equal(t, 1.0, count("prepare", "unknown", CallRefused))
	require.Equal(t, 5, testutil.CollectAndCount(m.peerCalls))
}
