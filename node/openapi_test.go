package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api/openapi"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// The served OpenAPI document names exactly the routes a fully wired node
// (registry, TEG, EventStore, worker) has: a route without an operation
// row, or a row without a route, fails and is named. Adding a route means
// adding its row in api/openapi (ops_*.go).
func TestOpenAPIDocumentMatchesTheRoutes(t *testing.T) {
	t.Parallel()
	frame, reg := testRegistry(t)
	n, err := node.Start(context.Background(), node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t), TemporalAddr: testenv.TemporalAddr(t),
		DataDir: t.TempDir(), Log: quietLog,
	})
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })
	t.Cleanup(func() { deleteSchedules(n, reg.ID) })

	resp, err := http.Get(n.URL() + "/api/v1/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.Equal(t, "3.1.0", doc.OpenAPI)

	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	routed := map[string]bool{}
	for _, r := range n.Routes() {
		method, path, _ := strings.Cut(r, " ")
		routed[method+" "+openapi.FromGinPath(path)] = true
	}
	var missing, stale []string
	for r := range routed {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for r := range documented {
		if !routed[r] {
			stale = append(stale, r)
		}
	}
	slices.Sort(missing)
	slices.Sort(stale)
	assert.Empty(t, missing, "routes with no operation in the OpenAPI document (add rows to api/openapi/ops_*.go)")
	require.Empty(t, stale, "operations in the OpenAPI document with no route")
}
