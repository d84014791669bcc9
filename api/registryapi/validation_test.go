package registryapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadInputIsRejectedAndWritesNothing sends malformed JSON, missing
// fields, wrong types, unknown fields, oversized bodies, bad encodings and
// invalid values to every endpoint that takes input, expecting a 4xx with
// the error body, and checks that no table changed.
func TestBadInputIsRejectedAndWritesNothing(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	_, _, devTok := n.developer(t)
	did, clientID, secret := n.agent(t, devTok, card("A", "x"))
	agentTok := n.agentToken(t, clientID, secret)
	bt := n.bootstrap(t, devTok, nil)
	r := n.do(t, req{Method: "POST", Path: "/api/v1/organisations", Token: devTok, Body: map[string]string{"name": "Org"}})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	orgID := r.Str(t, "organisation_id")

	tables := []string{"developers", "agents", "agent_cards", "bootstrap_tokens", "organisations", "organisation_members", "outbox", "revoked_tokens", "admin_clients"}
	before := map[string]int{}
	for _, tb := range tables {
		before[tb] = n.countRows(t, tb)
	}

	huge := `{"name":"` + strings.Repeat("a", testMaxBody+10) + `","email":"a@b.c"}`
	invalidUTF8 := []byte("{\"name\":\"\xff\xfe\",\"email\":\"a@b.c\"}")
	longStr := strings.Repeat("x", 300)
	manySkills := []map[string]any{}
	for i := range 40 {
		manySkills = append(manySkills, map[string]any{"id": "s" + string(rune('a'+i%26)) + strings.Repeat("z", i), "name": "n"})
	}
	withCard := func(mod func(map[string]any)) map[string]any {
		c := card("Good", "ok")
		mod(c)
		return c
	}

	type tc struct {
		name, method, path, token string
		body                      any
		ct                        string
		status                    int
		msg                       string
	}
	var cases []tc
	// The generic body problems, on every JSON endpoint.
	jsonEndpoints := []struct{ method, path, token, wrongType string }{
		{"POST", "/api/v1/developers", "", `{"name":5,"email":"a@b.c"}`},
		{"POST", "/api/v1/auth/token", "", `{"grant_type":["api_key"]}`},
		{"POST", "/api/v1/bootstrap-tokens", devTok, `{"ttl_seconds":"600"}`},
		{"POST", "/api/v1/agents", bt, `{"card":"x"}`},
		{"PUT", "/api/v1/agents/" + did + "/card", agentTok, `{"name":"a","url":"https://x.org","skills":{"id":"x"}}`},
		{"POST", "/api/v1/organisations", devTok, `{"name":true}`},
		{"POST", "/api/v1/organisations/" + orgID + "/members", devTok, `{"developer_id":5}`},
	}
	for _, e := range jsonEndpoints {
		cases = append(cases,
			tc{"malformed", e.method, e.path, e.token, `{"name":`, "", 400, "malformed JSON"},
			tc{"not an object", e.method, e.path, e.token, `[1,2]`, "", 400, "must be"},
			tc{"wrong type", e.method, e.path, e.token, e.wrongType, "", 400, "must be"},
			tc{"unknown field", e.method, e.path, e.token, `{"nonsense":1}`, "", 400, "unknown field"},
			tc{"trailing data", e.method, e.path, e.token, `{} {}`, "", 400, "after the JSON object"},
			tc{"invalid utf-8", e.method, e.path, e.token, invalidUTF8, "", 400, "UTF-8"},
			tc{"oversized", e.method, e.path, e.token, huge, "", 413, "larger than"},
			tc{"wrong content type", e.method, e.path, e.token, `{}`, "text/plain", 400, "Content-Type"},
		)
	}
	// Missing fields and invalid values, per endpoint.
	cases = append(cases,
		tc{"signup missing fields", "POST", "/api/v1/developers", "", `{}`, "", 400, "required"},
		tc{"signup empty body", "POST", "/api/v1/developers", "", ``, "", 400, "empty"},
		tc{"signup bad email", "POST", "/api/v1/developers", "", map[string]string{"name": "x", "email": "nope"}, "", 400, "email"},
		tc{"signup control chars", "POST", "/api/v1/developers", "", map[string]string{"name": "a\u0000b", "email": "a@b.c"}, "", 400, "control"},
		tc{"signup long name", "POST", "/api/v1/developers", "", map[string]string{"name": longStr, "email": "a@b.c"}, "", 400, "at most"},
		tc{"token missing grant", "POST", "/api/v1/auth/token", "", `{}`, "", 400, "grant_type"},
		tc{"token unknown grant", "POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "password"}, "", 400, "grant_type"},
		tc{"token missing secret", "POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": clientID}, "", 400, "client_secret"},
		tc{"token form unknown field", "POST", "/api/v1/auth/token", "", "grant_type=api_key&api_key=x&scope=admin", "application/x-www-form-urlencoded", 400, "unknown form field"},
		tc{"token form repeated field", "POST", "/api/v1/auth/token", "", "grant_type=api_key&api_key=x&api_key=y", "application/x-www-form-urlencoded", 400, "more than once"},
		tc{"token form malformed", "POST", "/api/v1/auth/token", "", "grant_type=%zz", "application/x-www-form-urlencoded", 400, "malformed"},
		tc{"token bad credentials", "POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": clientID, "client_secret": "tps_nope"}, "", 401, "invalid client"},
		tc{"token bad api key", "POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "api_key", "api_key": "tpk_nope"}, "", 401, "invalid API key"},
		tc{"bootstrap ttl too long", "POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{"ttl_seconds": 99999}, "", 400, "ttl_seconds"},
		tc{"bootstrap bad org", "POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{"organisation_id": "nope"}, "", 400, "organisation_id"},
		tc{"bootstrap foreign org", "POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{"organisation_id": "00000000-0000-4000-8000-000000000000"}, "", 403, "not a member"},
		tc{"agent bad scheme", "POST", "/api/v1/agents", bt, map[string]any{"card": withCard(func(c map[string]any) { c["url"] = "ftp://x.org" })}, "", 400, "http or https"},
		tc{"agent javascript url", "POST", "/api/v1/agents", bt, map[string]any{"card": withCard(func(c map[string]any) { c["url"] = "javascript:alert(1)" })}, "", 400, "http or https"},
		tc{"agent url with credentials", "POST", "/api/v1/agents", bt, map[string]any{"card": withCard(func(c map[string]any) { c["url"] = "https://u:p@x.org" })}, "", 400, "credentials"},
		tc{"agent missing name", "POST", "/api/v1/agents", bt, map[string]any{"card": withCard(func(c map[string]any) { delete(c, "name") })}, "", 400, "required"},
		tc{"agent too many skills", "POST", "/api/v1/agents", bt, map[string]any{"card": withCard(func(c map[string]any) { c["skills"] = manySkills })}, "", 400, "at most"},
		tc{"agent bad skill id", "POST", "/api/v1/agents", bt, map[string]any{"card": withCard(func(c map[string]any) { c["skills"] = []map[string]any{{"id": "Bad Id", "name": "n"}} })}, "", 400, "skills[0].id"},
		tc{"agent negative price", "POST", "/api/v1/agents", bt, map[string]any{"card": withCard(func(c map[string]any) {
			c["payment_terms"] = map[string]any{"currency": "AVT", "price_per_call_units": -1}
		})}, "", 400, "negative"},
		tc{"agent float price", "POST", "/api/v1/agents", bt, map[string]any{"card": withCard(func(c map[string]any) {
			c["payment_terms"] = map[string]any{"currency": "AVT", "price_per_call_units": 1.5}
		})}, "", 400, "must be"},
		tc{"card missing", "PUT", "/api/v1/agents/" + did + "/card", agentTok, `{}`, "", 400, "required"},
		tc{"card long description", "PUT", "/api/v1/agents/" + did + "/card", agentTok, withCard(func(c map[string]any) { c["description"] = strings.Repeat("d", 3000) }), "", 400, "description"},
		tc{"card bad did", "PUT", "/api/v1/agents/did:theprotocol:NOPE/card", agentTok, card("A"), "", 400, "DID"},
		tc{"card other agent", "PUT", "/api/v1/agents/did:theprotocol:00000000-0000-4000-8000-000000000000/card", agentTok, card("A"), "", 404, "not found"},
		tc{"org missing name", "POST", "/api/v1/organisations", devTok, `{}`, "", 400, "required"},
		tc{"org duplicate", "POST", "/api/v1/organisations", devTok, map[string]string{"name": "org"}, "", 409, "exists"},
		tc{"invite missing", "POST", "/api/v1/organisations/" + orgID + "/members", devTok, `{}`, "", 400, "developer_id"},
		tc{"invite bad role", "POST", "/api/v1/organisations/" + orgID + "/members", devTok, map[string]string{"developer_id": "00000000-0000-4000-8000-000000000000", "role": "god"}, "", 400, "role"},
		tc{"invite unknown dev", "POST", "/api/v1/organisations/" + orgID + "/members", devTok, map[string]string{"developer_id": "00000000-0000-4000-8000-000000000000"}, "", 404, "developer"},
		tc{"invite bad org id", "POST", "/api/v1/organisations/NOPE/members", devTok, map[string]string{"developer_id": "00000000-0000-4000-8000-000000000000"}, "", 400, "UUID"},
		tc{"list bad limit", "GET", "/api/v1/agents?limit=abc", devTok, nil, "", 400, "limit"},
		tc{"list zero limit", "GET", "/api/v1/agents?limit=0", devTok, nil, "", 400, "limit"},
		tc{"list bad cursor", "GET", "/api/v1/agents?cursor=!!", devTok, nil, "", 400, "cursor"},
		tc{"list bad skill", "GET", "/api/v1/agents?skill=A%20B", devTok, nil, "", 400, "skill"},
		tc{"list unknown param", "GET", "/api/v1/agents?sort=x", devTok, nil, "", 400, "unknown query parameter"},
		tc{"get bad did", "GET", "/api/v1/agents/did:example:1", devTok, nil, "", 400, "DID"},
		tc{"get uppercase did", "GET", "/api/v1/agents/" + strings.ToUpper(did), devTok, nil, "", 400, "DID"},
	)
	for _, c := range cases {
		t.Run(c.method+" "+c.path[len("/api/v1"):]+" "+c.name, func(t *testing.T) {
			r := n.do(t, req{Method: c.method, Path: c.path, Token: c.token, Body: c.body, ContentType: c.ct})
			require.Equal(t, c.status, r.Status, "%s", r.Body)
			m := r.JSON(t)
			e, ok := m["error"].(map[string]any)
			require.True(t, ok, "error body: %s", r.Body)
			require.NotEmpty(t, e["code"])
			require.Contains(t, strings.ToLower(e["message"].(string)), strings.ToLower(c.msg))
		})
	}
	for _, tb := range tables {
		require.Equal(t, before[tb], n.countRows(t, tb), "table %s changed", tb)
	}
	// The bootstrap token survived all the rejected creations.
	r = n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	var n2 int
	require.NoError(t, n.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM agents`).Scan(&n2))
	require.Equal(t, before["agents"]+1, n2)
}
