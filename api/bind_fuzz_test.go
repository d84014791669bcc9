package api_test

import (
	"testing"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
)

// FuzzDecodeJSONBytes: no input makes the strict decoder panic, and every
// rejection is a 4xx-class error (Invalid), never an internal one.
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
		if err != nil && apperr.CodeOf(err) != apperr.Invalid {
			t.Fatalf("decode error with code %s: %v", apperr.CodeOf(err), err)
		}
	})
}
