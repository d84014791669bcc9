package sdk_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/paytoken"
	"github.com/theprotocol-dev/theprotocol/sdk"
)

// fakeRegistry serves what PaymentVerifier needs from a registry: node
// info, the JWKS (whose keys the test can rotate) and settle/release,
// which it records.
type fakeRegistry struct {
	mu       sync.Mutex
	keys     []ed25519.PublicKey
	settled  []int64
	released int
	srv      *httptest.Server
}

const fakeIssuer = "spiffe://f.test/registry/r1"

func newFakeRegistry(t *testing.T, keys ...ed25519.PublicKey) *fakeRegistry {
	f := &fakeRegistry{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/node", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(sdk.NodeInfo{Frame: "f", Registry: "r1", TrustDomain: "f.test", Currency: "AVT"})
	})
	mux.HandleFunc("GET /api/v1/auth/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var out []sdk.JWK
		for _, k := range f.keys {
			out = append(out, sdk.JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k), Kid: paytoken.KeyID(k)})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": out})
	})
	mux.HandleFunc("POST /api/v1/payments/settle", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			AmountUnits int64 `json:"amount_units"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.settled = append(f.settled, req.AmountUnits)
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(sdk.Settlement{Status: "posted", AmountUnits: req.AmountUnits})
	})
	mux.HandleFunc("POST /api/v1/payments/release", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		f.released++
		f.mu.Unlock()
		_, _ = w.Write([]byte(`{"status":"voided"}`))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func token(t *testing.T, key ed25519.PrivateKey, payee string, max int64) string {
	nonce, err := paytoken.NewNonce()
	require.NoError(t, err)
	now := time.Now()
	tok, err := paytoken.Sign(key, paytoken.Claims{Issuer: fakeIssuer, Payer: "did:theprotocol:payer", Payee: payee, HoldID: uuid.New(),
		MaxUnits: max, Currency: "AVT", IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix(), Nonce: nonce, Registry: "r1", Frame: "f"})
	require.NoError(t, err)
	return tok
}

func TestPaymentVerifierSellsEachTokenOnce(t *testing.T) {
	pub1, key1, _ := ed25519.GenerateKey(nil)
	pub2, key2, _ := ed25519.GenerateKey(nil)
	_, stranger, _ := ed25519.GenerateKey(nil)
	reg := newFakeRegistry(t, pub1)
	const payee, price = "did:theprotocol:payee", int64(500)
	v := &sdk.PaymentVerifier{Payee: payee, PriceUnits: price, Currency: "AVT", Settler: sdk.New(reg.srv.URL),
		Keys: &sdk.KeyCache{Registries: []*sdk.Client{sdk.New(reg.srv.URL)}, MinRefresh: time.Nanosecond}}
	var fail atomic.Bool
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("answer"))
	})))
	t.Cleanup(srv.Close)
	call := func(tok string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if tok != "" {
			req.Header.Set(sdk.PaymentHeader, tok)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
			Payment sdk.Offer `json:"payment"`
		}
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode == http.StatusPaymentRequired {
			require.Equal(t, price, e.Payment.PriceUnits, "every 402 carries the price")
			require.Equal(t, payee, e.Payment.Payee)
		}
		return resp.StatusCode, e.Error.Code, string(body)
	}

	code, reason, _ := call("")
	require.Equal(t, 402, code)
	require.Equal(t, "payment_required", reason)

	good := token(t, key1, payee, price)
	code, _, body := call(good)
	require.Equal(t, 200, code)
	require.Equal(t, "answer", body)
	require.Equal(t, []int64{price}, reg.settled, "settled once, for the price")

	for _, tc := range []struct{ name, tok, reason string }{
		{"replayed", good, "payment_replayed"},
		{"forged", token(t, stranger, payee, price), "payment_invalid"},
		{"another payee", token(t, key1, "did:theprotocol:other", price), "payment_invalid"},
		{"below the price", token(t, key1, payee, price-1), "payment_insufficient"},
	} {
		code, reason, _ := call(tc.tok)
		require.Equal(t, 402, code, tc.name)
		require.Equal(t, tc.reason, reason, tc.name)
	}
	require.Len(t, reg.settled, 1, "no refused token was settled")

	// The registry rotates to a new key: the cache refetches on the
	// unknown kid and accepts it.
	reg.mu.Lock()
	reg.keys = []ed25519.PublicKey{pub2, pub1}
	reg.mu.Unlock()
	code, _, _ = call(token(t, key2, payee, price))
	require.Equal(t, 200, code, "a token signed with the rotated key")
	require.Len(t, reg.settled, 2)

	// A failing handler releases the token and passes the failure on.
	fail.Store(true)
	code, _, _ = call(token(t, key1, payee, price))
	require.Equal(t, 500, code)
	require.Len(t, reg.settled, 2)
	require.Equal(t, 1, reg.released)
}

// The Gin form sells the same way: 402 without a token, the answer after
// settlement, a replayed token refused.
func TestPaymentVerifierGin(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	reg := newFakeRegistry(t, pub)
	const payee, price = "did:theprotocol:payee", int64(700)
	v := &sdk.PaymentVerifier{Payee: payee, PriceUnits: price, Currency: "AVT", Settler: sdk.New(reg.srv.URL),
		Keys: &sdk.KeyCache{Registries: []*sdk.Client{sdk.New(reg.srv.URL)}}}
	e := gin.New()
	e.GET("/answer", v.Gin(), func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"answer": 42}) })
	do := func(tok string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/answer", nil)
		if tok != "" {
			req.Header.Set(sdk.PaymentHeader, tok)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	code, _ := do("")
	require.Equal(t, 402, code)
	require.Empty(t, reg.settled)
	tok := token(t, key, payee, price)
	code, body := do(tok)
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"answer":42}`, body)
	require.Equal(t, []int64{price}, reg.settled)
	code, _ = do(tok)
	require.Equal(t, 402, code)
	require.Len(t, reg.settled, 1)
}
