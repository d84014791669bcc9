package registryapi_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/registry"
)

// TestEndToEnd walks the whole identity lifecycle over real HTTP against a
// node started in the test, checks each event in the outbox, and then
// greps a dump of every table and the run's logs for every secret it saw.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	var secrets []string // every secret and token this run created

	// 1. Developer sign-up (idempotent replay returns the same key).
	idemKey := uuid.NewString()
	signUp := req{Method: "POST", Path: "/api/v1/developers", Body: map[string]string{"name": "Ada", "email": "ada@example.org"},
		Header: map[string]string{"Idempotency-Key": idemKey}}
	short := n.do(t, req{Method: "POST", Path: "/api/v1/developers", Body: map[string]string{"name": "Ada", "email": "ada@example.org"},
		Header: map[string]string{"Idempotency-Key": "1"}})
	require.Equal(t, http.StatusBadRequest, short.Status, "guessable sign-up keys are refused: %s", short.Body)
	r := n.do(t, signUp)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	devID, apiKey := r.Str(t, "developer_id"), r.Str(t, "api_key")
	require.True(t, strings.HasPrefix(apiKey, "tpk_"))
	require.Equal(t, "dev:"+devID, r.Str(t, "account_id"))
	secrets = append(secrets, apiKey)
	replay := n.do(t, signUp)
	require.Equal(t, http.StatusCreated, replay.Status)
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	require.Equal(t, apiKey, replay.Str(t, "api_key"), "the replay returns the same response")
	require.Equal(t, 1, n.countRows(t, "developers"))
	dup := n.do(t, req{Method: "POST", Path: "/api/v1/developers", Body: map[string]string{"name": "Ada", "email": "ADA@example.org"}})
	require.Equal(t, http.StatusConflict, dup.Status, "emails are unique, case-insensitively")

	// 2. Developer token, bootstrap token.
	devTok := n.devToken(t, apiKey)
	secrets = append(secrets, devTok)
	me := n.do(t, req{Method: "GET", Path: "/api/v1/developers/me", Token: devTok})
	require.Equal(t, http.StatusOK, me.Status, "%s", me.Body)
	require.Equal(t, devID, me.Str(t, "developer_id"))
	bt := n.bootstrap(t, devTok, map[string]any{"ttl_seconds": 600})
	require.True(t, strings.HasPrefix(bt, "tpb_"))
	secrets = append(secrets, bt)

	// 3. Agent creation with the bootstrap token, with a first card.
	r = n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt, Body: map[string]any{"card": card("Translator", "translate", "summarise")},
		Header: map[string]string{"Idempotency-Key": "create-agent-1"}})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	did, clientID, secret := r.Str(t, "did"), r.Str(t, "client_id"), r.Str(t, "client_secret")
	require.True(t, registry.ValidDID(did), did)
	require.Equal(t, "alpha-main", r.Str(t, "home_registry"))
	require.Equal(t, "alpha", r.Str(t, "frame"))
	secrets = append(secrets, secret)
	// The same request with the same Idempotency-Key replays; without it
	// the consumed token is refused.
	again := n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt, Body: map[string]any{"card": card("Translator", "translate", "summarise")},
		Header: map[string]string{"Idempotency-Key": "create-agent-1"}})
	require.Equal(t, http.StatusCreated, again.Status)
	require.Equal(t, did, again.Str(t, "did"))
	reuse := n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt, Body: map[string]any{}})
	require.Equal(t, http.StatusUnauthorized, reuse.Status, "%s", reuse.Body)
	require.Equal(t, 1, n.countRows(t, "agents"))

	// 4. Token exchange (form-encoded) and authenticated calls.
	agentTok := n.agentToken(t, clientID, secret)
	secrets = append(secrets, agentTok)
	r = n.do(t, req{Method: "GET", Path: "/api/v1/agents/" + did, Token: agentTok})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "active", r.Str(t, "status"))
	r = n.do(t, req{Method: "GET", Path: "/api/v1/agents/" + did + "/card", Token: agentTok})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "PUT", Path: "/api/v1/agents/" + did + "/card", Token: agentTok, Body: card("Translator v2", "translate")})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.EqualValues(t, 2, r.JSON(t)["version"])
	r = n.do(t, req{Method: "GET", Path: "/api/v1/agents?skill=translate", Token: devTok})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Len(t, r.JSON(t)["items"], 1)
	r = n.do(t, req{Method: "GET", Path: "/api/v1/agents?skill=summarise", Token: devTok})
	require.Len(t, r.JSON(t)["items"], 0, "the new card version dropped the skill")

	// 5. Credential rotation: old secret and old token stop working at once.
	r = n.do(t, req{Method: "POST", Path: "/api/v1/agents/" + did + "/credentials", Token: agentTok})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	clientID2, secret2 := r.Str(t, "client_id"), r.Str(t, "client_secret")
	require.NotEqual(t, secret, secret2)
	secrets = append(secrets, secret2)
	old := n.do(t, req{Method: "POST", Path: "/api/v1/auth/token", Body: map[string]string{"grant_type": "client_credentials", "client_id": clientID, "client_secret": secret}})
	require.Equal(t, http.StatusUnauthorized, old.Status, "old secret rejected: %s", old.Body)
	r = n.do(t, req{Method: "GET", Path: "/api/v1/agents/" + did, Token: agentTok})
	require.Equal(t, http.StatusUnauthorized, r.Status, "old token rejected: %s", r.Body)
	agentTok2 := n.agentToken(t, clientID2, secret2)
	secrets = append(secrets, agentTok2)
	r = n.do(t, req{Method: "GET", Path: "/api/v1/agents/" + did, Token: agentTok2})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	// 6. Deregistration by the developer: the agent's token and secret die.
	r = n.do(t, req{Method: "DELETE", Path: "/api/v1/agents/" + did, Token: devTok, Header: map[string]string{"Idempotency-Key": "dereg-1"}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "deregistered", r.Str(t, "status"))
	r = n.do(t, req{Method: "GET", Path: "/api/v1/agents/" + did, Token: agentTok2})
	require.Equal(t, http.StatusUnauthorized, r.Status)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/auth/token", Body: map[string]string{"grant_type": "client_credentials", "client_id": clientID2, "client_secret": secret2}})
	require.Equal(t, http.StatusUnauthorized, r.Status)
	r = n.do(t, req{Method: "GET", Path: "/api/v1/agents?skill=translate", Token: devTok})
	require.Len(t, r.JSON(t)["items"], 0, "deregistered agents leave the listing")
	r = n.do(t, req{Method: "GET", Path: "/api/v1/agents/" + did + "/card", Token: devTok})
	require.Equal(t, http.StatusNotFound, r.Status)

	// 7. API key rotation revokes the developer's tokens.
	r = n.do(t, req{Method: "POST", Path: "/api/v1/developers/me/api-key", Token: devTok})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	apiKey2 := r.Str(t, "api_key")
	secrets = append(secrets, apiKey2)
	r = n.do(t, req{Method: "GET", Path: "/api/v1/developers/me", Token: devTok})
	require.Equal(t, http.StatusUnauthorized, r.Status)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/auth/token", Body: map[string]string{"grant_type": "api_key", "api_key": apiKey}})
	require.Equal(t, http.StatusUnauthorized, r.Status)
	secrets = append(secrets, n.devToken(t, apiKey2))

	// Every state change wrote its event, in order, with business keys.
	require.Equal(t, []string{
		"DeveloperRegistered", "AgentRegistered", "AgentCardPublished", "AgentCardPublished",
		"CredentialsRotated", "AgentDeregistered", "ApiKeyRotated",
	}, n.outboxTypes(t))
	for _, key := range []string{
		"developer-registered-" + devID, "agent-registered-" + did, "agent-card-published-" + did + "-v1",
		"agent-card-published-" + did + "-v2", "credentials-rotated-" + did + "-g2", "agent-deregistered-" + did,
		"api-key-rotated-" + devID + "-g2",
	} {
		var env []byte
		require.NoError(t, n.DB.Pool.QueryRow(context.Background(), `SELECT envelope FROM outbox WHERE idempotency_key = $1`, key).Scan(&env), key)
		var e struct {
			Frame, Registry, Source string
		}
		require.NoError(t, json.Unmarshal(env, &e))
		require.Equal(t, "alpha", e.Frame)
		require.Equal(t, "alpha-main", e.Registry)
		require.Equal(t, "registry", e.Source)
	}

	assertNoSecrets(t, n, secrets)
}

// assertNoSecrets dumps every table of the node's database as JSON and the
// node's logs and fails if any secret appears in clear (as text, or
// hex-encoded as bytea columns render).
func assertNoSecrets(t *testing.T, n *node, secrets []string) {
	t.Helper()
	ctx := context.Background()
	rows, err := n.DB.Pool.Query(ctx, `SELECT quote_ident(table_name) FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		tables = append(tables, s)
	}
	require.NoError(t, rows.Err())
	require.Contains(t, tables, "agents")
	require.Contains(t, tables, "idempotency_keys")
	var dump strings.Builder
	for _, tbl := range tables {
		var s string
		require.NoError(t, n.DB.Pool.QueryRow(ctx, `SELECT coalesce(json_agg(row_to_json(t))::text, '') FROM `+tbl+` t`).Scan(&s))
		dump.WriteString(tbl + ": " + s + "\n")
	}
	logs := n.Logs.String()
	require.NotEmpty(t, logs, "the run logged its requests")
	require.Contains(t, dump.String(), "idempotency_keys: [", "stored idempotent responses are part of the dump")
	for _, s := range secrets {
		require.NotEmpty(t, s)
		// Without the short type prefix ("tpk_", "tps_"…), if there is one;
		// base64url bodies and JWTs may contain '_' anywhere else.
		body := s
		if i := strings.IndexByte(s, '_'); i > 0 && i <= 6 {
			body = s[i+1:]
		}
		require.GreaterOrEqual(t, len(body), 16, "a secret is long enough to search for")
		for _, needle := range []string{s, body, hex.EncodeToString([]byte(s)), hex.EncodeToString([]byte(body))} {
			require.NotContains(t, dump.String(), needle, "a secret is stored in clear")
			require.NotContains(t, logs, needle, "a secret is logged")
		}
	}
}
