package openapi_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api/openapi"
)

// The committed document (the generated SDK client's input) is the one
// the operation table builds: a changed row or DTO without `make generate`
// fails here, naming the fix.
func TestCommittedDocumentIsCurrent(t *testing.T) {
	want, err := openapi.Committed()
	require.NoError(t, err)
	got, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	if !bytes.Equal(got, want) {
		t.Fatalf("api/openapi/openapi.json is stale (the operation table or a DTO changed): run 'make generate' and commit")
	}
}
