package registryapi

import (
	"testing"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// FuzzRequestDecoders feeds arbitrary bytes to every request decoder and
// validator of the registry API: strict JSON decoding into each DTO, the
// DTO's Validate, the token endpoint's form parser, and the query/path
// parsers. None may panic, and every rejection must be a caller error
// (invalid_argument), never an internal error. Seed corpus:
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
		decodeValidate := func(what string, dst validator) {
			if err := api.DecodeJSONBytes(data, dst); err != nil {
				check(what, err)
				return
			}
			check(what, dst.Validate())
		}
		decodeValidate("signup", &SignUpRequest{})
		decodeValidate("token", &TokenRequest{})
		decodeValidate("bootstrap", &BootstrapTokenRequest{})
		decodeValidate("agent", &CreateAgentRequest{})
		decodeValidate("organisation", &OrganisationRequest{})
		decodeValidate("invite", &InviteRequest{})
		var card registry.AgentCard
		if err := api.DecodeJSONBytes(data, &card); err == nil {
			check("card", card.Validate())
		}
		if req, err := parseTokenForm(data); err == nil {
			check("token form", req.Validate())
		} else {
			check("token form", err)
		}
		s := string(data)
		_, err := decodeCursor(s)
		check("cursor", err)
		_, err = parseLimit(s)
		check("limit", err)
		_, err = registry.ParseDID(s)
		check("did", err)
		_, err = parseUUID("id", s)
		check("uuid", err)
		_ = registry.ValidSkillID(s)
	})
}
