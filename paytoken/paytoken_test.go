package paytoken_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/paytoken"
)

const iss = "spiffe://alpha.test/registry/alpha-main"

func fixture(t *testing.T) (ed25519.PrivateKey, paytoken.Claims, time.Time) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	now := time.Unix(1_800_000_000, 0)
	nonce, err := paytoken.NewNonce()
	require.NoError(t, err)
	return key, paytoken.Claims{
		Issuer: iss, Payer: "did:theprotocol:a", Payee: "did:theprotocol:b", HoldID: uuid.New(), MaxUnits: 500,
		Currency: "AVT", IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix(), Nonce: nonce, Registry: "alpha-main", Frame: "alpha",
	}, now
}

func TestVerifyAcceptsOnlyGenuineUnexpiredTokensForTheirPayee(t *testing.T) {
	key, c, now := fixture(t)
	keys := paytoken.StaticKeys(iss, key.Public().(ed25519.PublicKey))
	tok, err := paytoken.Sign(key, c)
	require.NoError(t, err)

	got, err := paytoken.VerifyFor(tok, c.Payee, keys, now)
	require.NoError(t, err)
	require.Equal(t, c, got)

	_, otherKey, _ := ed25519.GenerateKey(nil)
	forged, err := paytoken.Sign(otherKey, c)
	require.NoError(t, err)
	parts := strings.Split(tok, ".")
	bigger := c
	bigger.MaxUnits = 5_000_000
	raw, _ := json.Marshal(bigger)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
	bearerHdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT","kid":"` + paytoken.KeyID(key.Public().(ed25519.PublicKey)) + `"}`))
	bearerTyped := bearerHdr + "." + parts[1] + "." + parts[2]

	cases := []struct {
		name  string
		tok   string
		payee string
		at    time.Time
		keys  paytoken.KeyFunc
		code  apperr.Code
	}{
		{"forged with another key", forged, c.Payee, now, keys, apperr.Invalid},
		{"claims changed after signing", tampered, c.Payee, now, keys, apperr.Invalid},
		{"bearer token type", bearerTyped, c.Payee, now, keys, apperr.Invalid},
		{"malformed", "a.b", c.Payee, now, keys, apperr.Invalid},
		{"empty", "", c.Payee, now, keys, apperr.Invalid},
		{"wrong audience", tok, "did:theprotocol:mallory", now, keys, apperr.Forbidden},
		{"expired", tok, c.Payee, now.Add(time.Minute), keys, apperr.FailedPrecondition},
		{"issuer differs from the key's", tok, c.Payee, now, paytoken.StaticKeys("spiffe://other/registry/x", key.Public().(ed25519.PublicKey)), apperr.Invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := paytoken.VerifyFor(tc.tok, tc.payee, tc.keys, tc.at)
			require.Error(t, err)
			require.Equal(t, tc.code, apperr.CodeOf(err), err.Error())
		})
	}
}

func TestSignRefusesInvalidClaims(t *testing.T) {
	key, c, _ := fixture(t)
	for _, mut := range []func(*paytoken.Claims){
		func(c *paytoken.Claims) { c.MaxUnits = 0 },
		func(c *paytoken.Claims) { c.Payee = c.Payer },
		func(c *paytoken.Claims) { c.HoldID = uuid.Nil },
		func(c *paytoken.Claims) { c.ExpiresAt = c.IssuedAt },
		func(c *paytoken.Claims) { c.Nonce = "short" },
	} {
		bad := c
		mut(&bad)
		_, err := paytoken.Sign(key, bad)
		require.Error(t, err)
	}
}

// Property: changing any single byte of a genuine token never yields a
// token that verifies with different claims.
func TestAnyByteChangeIsRefused(t *testing.T) {
	key, c, now := fixture(t)
	keys := paytoken.StaticKeys(iss, key.Public().(ed25519.PublicKey))
	tok, err := paytoken.Sign(key, c)
	require.NoError(t, err)
	f := func(pos uint16, delta uint8) bool {
		if delta == 0 {
			return true
		}
		b := []byte(tok)
		i := int(pos) % len(b)
		b[i] += delta
		got, err := paytoken.VerifyFor(string(b), c.Payee, keys, now)
		return err != nil || got == c
	}
	require.NoError(t, quick.Check(f, &quick.Config{MaxCount: 3000}))
}

// A cross-registry token names the payee's registry under the signature
// (changing it breaks the signature); Peek reads the claims without
// verifying them, only to route a token to its issuer.
func TestPayeeRegistryIsSignedAndPeekOnlyRoutes(t *testing.T) {
	key, c, now := fixture(t)
	keys := paytoken.StaticKeys(iss, key.Public().(ed25519.PublicKey))
	c.PayeeRegistry = "alpha-op1"
	tok, err := paytoken.Sign(key, c)
	require.NoError(t, err)
	got, err := paytoken.VerifyFor(tok, c.Payee, keys, now)
	require.NoError(t, err)
	require.Equal(t, "alpha-op1", got.PayeeRegistry)

	parts := strings.Split(tok, ".")
	moved := c
	moved.PayeeRegistry = "alpha-op2"
	raw, _ := json.Marshal(moved)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
	_, err = paytoken.Verify(tampered, keys, now)
	require.ErrorIs(t, err, paytoken.ErrSignature)
	peeked, err := paytoken.Peek(tampered)
	require.NoError(t, err, "Peek does not verify")
	require.Equal(t, "alpha-op2", peeked.PayeeRegistry)

	self := c
	self.PayeeRegistry = c.Registry
	_, err = paytoken.Sign(key, self)
	require.True(t, apperr.Is(err, apperr.Invalid), "the issuer is not the payee's other registry")
	for _, bad := range []string{"", "a.b", "a.!!.c", strings.Repeat("x", paytoken.MaxLen+1)} {
		_, err := paytoken.Peek(bad)
		require.Error(t, err, bad)
	}
}
