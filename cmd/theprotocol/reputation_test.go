package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/reputation"
	"github.com/theprotocol-dev/theprotocol/reputation/eigentrust"
)

// `reputation verify` recomputes a served run: the published digest
// matches; a published digest that is not what the inputs give does not.
func TestVerifyRun(t *testing.T) {
	g := eigentrust.NewGraph()
	g.AddTransfer("did:a", "did:b", 10)
	g.AddTransfer("did:b", "did:c", 3)
	p := eigentrust.DefaultParams()
	res, err := eigentrust.Compute(g, p)
	require.NoError(t, err)
	d, in := res.Digest(p), g.InputDigest()
	enc, _ := zstd.NewWriter(nil)
	blob := enc.EncodeAll(g.Encode(), nil)
	published := hex.EncodeToString(d[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/reputation/runs/latest":
			_ = json.NewEncoder(w).Encode(map[string]any{"run_id": "run-7", "digest": published, "input_digest": hex.EncodeToString(in[:]), "params": reputation.FromEigenTrust(p)})
		case "/api/v1/reputation/runs/run-7/graph":
			_, _ = w.Write(blob)
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	got, err := verifyRun(ctx, srv.Client(), srv.URL, "latest")
	require.NoError(t, err)
	require.True(t, got.Match)
	require.Equal(t, "run-7", got.RunID)

	published = hex.EncodeToString(make([]byte, 32))
	got, err = verifyRun(ctx, srv.Client(), srv.URL, "latest")
	require.NoError(t, err)
	require.False(t, got.Match, "a digest the inputs do not give is reported")

	_, err = verifyRun(ctx, srv.Client(), srv.URL, "run-unknown")
	require.Error(t, err)
}
