package registryapi

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"strconv"
	"testing"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// FuzzRequestDecoders feeds arbitrary bytes to every request decoder and
// validator of the registry API: strict JSON decoding into each DTO, the
// DTO's Validate, the token endpoint's form parser, and the query/path
// parsers. None may panic, and every rejection must be a caller error
// (invalid_argument), never an internal error. Every accepted input must
// also mean what it says: re-encoded, it decodes to an equivalent request
// that still validates, and the scalar parsers agree with a spelling
// rebuilt from their result (or with strconv for the limit). Seed corpus:
// testdata/fuzz/FuzzRequestDecoders.
//
//	go test ./api/registryapi -run '^$' -fuzz FuzzRequestDecoders -fuzztime 30s
func FuzzRequestDecoders(f *testing.F) {
	for _, s := range []string{
		`{"name":"Ada","email":"ada@example.org"}`,
		`{"grant_type":"client_credentials","client_id":"tpc_0123456789abcdef01234567","client_secret":"tps_x"}`,
		`grant_type=api_key&api_key=tpk_0123456789abcdef01234567.xxxx`,
		`{"card":{"name":"A","description":"d","url":"https://a.example/x","skills":[{"id":"translate","name":"T","tags":["nlp"]}],"payment_terms":{"currency":"AVT","price_per_call_units":1000}}}`,
		`{"organisation_id":"6274f556-151c-43e4-9a70-721177931091","ttl_seconds":600}`,
		`{"developer_id":"6274f556-151c-43e4-9a70-721177931091","role":"owner"}`,
		`did:theprotocol:6274f556-151c-43e4-9a70-721177931091`,
		`{"name":"\u0000"}`, `[]`, `{} {}`, "\xff", `{"name":1e999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(what string, err error) {
			if err == nil {
				return
			}
			switch apperr.CodeOf(err) {
			case apperr.Invalid, apperr.TooLarge:
			default:
				t.Fatalf("%s: rejection with code %s: %v", what, apperr.CodeOf(err), err)
			}
		}
		// roundTrip re-encodes an accepted value and decodes it into a fresh
		// one; both must encode to the same bytes (so a field the decoder
		// dropped or mangled shows up) and the copy must still validate.
		roundTrip := func(what string, dst any) {
			enc, err := json.Marshal(dst)
			if err != nil {
				t.Fatalf("%s: accepted value does not re-encode: %v", what, err)
			}
			fresh := reflect.New(reflect.TypeOf(dst).Elem()).Interface()
			if err := api.DecodeJSONBytes(enc, fresh); err != nil {
				t.Fatalf("%s: re-encoded %s rejected: %v", what, enc, err)
			}
			again, err := json.Marshal(fresh)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if !bytes.Equal(enc, again) {
				t.Fatalf("%s: round trip changed the request:\n%s\n%s", what, enc, again)
			}
			if v, ok := fresh.(validator); ok {
				if err := v.Validate(); err != nil {
					t.Fatalf("%s: re-encoded %s no longer validates: %v", what, enc, err)
				}
			}
		}
		decodeValidate := func(what string, dst validator) {
			if err := api.DecodeJSONBytes(data, dst); err != nil {
				check(what, err)
				return
			}
			err := dst.Validate()
			check(what, err)
			if err == nil {
				roundTrip(what, dst)
			}
		}
		decodeValidate("signup", &SignUpRequest{})
		decodeValidate("token", &TokenRequest{})
		decodeValidate("bootstrap", &BootstrapTokenRequest{})
		decodeValidate("agent", &CreateAgentRequest{})
		decodeValidate("organisation", &OrganisationRequest{})
		decodeValidate("invite", &InviteRequest{})
		var card registry.AgentCard
		if err := api.DecodeJSONBytes(data, &card); err == nil {
			err := card.Validate()
			check("card", err)
			if err == nil {
				roundTrip("card", &card)
			}
		}
		if req, err := parseTokenForm(data); err == nil {
			// The form's fields, written out again, parse to the same request.
			vals := url.Values{}
			for k, v := range map[string]string{"grant_type": req.GrantType, "client_id": req.ClientID, "client_secret": req.ClientSecret, "api_key": req.APIKey} {
				if v != "" {
					vals.Set(k, v)
				}
			}
			again, err := parseTokenForm([]byte(vals.Encode()))
			if err != nil || again != req {
				t.Fatalf("token form: %q parsed to %+v, re-encoded to %+v (%v)", data, req, again, err)
			}
			check("token form", req.Validate())
		} else {
			check("token form", err)
		}
		s := string(data)
		did, err := decodeCursor(s)
		check("cursor", err)
		if err == nil && s != "" && (encodeCursor(did) != s || !registry.ValidDID(did)) {
			t.Fatalf("cursor %q accepted as %q, which encodes to %q", s, did, encodeCursor(did))
		}
		n, err := parseLimit(s)
		check("limit", err)
		if err == nil {
			want := registry.DefaultPageSize
			if s != "" {
				ref, rerr := strconv.Atoi(s)
				if rerr != nil || ref < 1 {
					t.Fatalf("limit %q accepted as %d; strconv says %d, %v", s, n, ref, rerr)
				}
				want = min(ref, registry.MaxPageSize)
			}
			if n != want {
				t.Fatalf("limit %q read as %d, want %d", s, n, want)
			}
		}
		id, err := registry.ParseDID(s)
		check("did", err)
		if err == nil && registry.DIDFromUUID(id) != s {
			t.Fatalf("DID %q parsed to %s, which formats as %q", s, id, registry.DIDFromUUID(id))
		}
		u, err := parseUUID("id", s)
		check("uuid", err)
		if err == nil && u.String() != s {
			t.Fatalf("UUID %q parsed to %s", s, u)
		}
		_ = registry.ValidSkillID(s)
	})
}
