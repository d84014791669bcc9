package api_test

import (
	"encoding/json"
	"testing"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
)

// FuzzDecodeJSONBytes: no input makes the strict decoder panic, and every
// rejection is a 4xx-class error (Invalid), never an internal one. What it
// accepts is one well-formed JSON value (encoding/json agrees) and re-encodes
// to a body that decodes to the same request.
func FuzzDecodeJSONBytes(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a","amount_units":5}`, `{}`, `[]`, `null`, `{"amount_units":1e400}`,
		`{"name":"\ud800"}`, "{\"name\":\"\xff\"}", `{"a":{"b":[1,2,{"c":null}]}}`, `{"name":"a"}{"name":"b"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var s sample
		err := api.DecodeJSONBytes(body, &s)
		if err != nil {
			if apperr.CodeOf(err) != apperr.Invalid {
				t.Fatalf("decode error with code %s: %v", apperr.CodeOf(err), err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body encoding/json calls invalid: %q", body)
		}
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var again sample
		if err := api.DecodeJSONBytes(enc, &again); err != nil || again != s {
			t.Fatalf("%q decoded to %+v; re-encoded %s decodes to %+v (%v)", body, s, enc, again, err)
		}
	})
}
