package auth_test

import (
	"crypto/ed25519"
	"reflect"
	"testing"
	"time"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// FuzzVerify: arbitrary bearer strings never panic the verifier and are
// only ever rejected as unauthenticated; nothing but a real signature
// verifies. Seed corpus: testdata/fuzz/FuzzVerify.
//
//	go test ./auth -run '^$' -fuzz FuzzVerify -fuzztime 30s
func FuzzVerify(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	now := func() time.Time { return time.Unix(1_800_000_000, 0) }
	s, err := auth.NewSigner(auth.SignerOptions{Key: seed, Issuer: iss, Audience: aud, Registry: "alpha-main", Frame: "alpha", Now: now})
	if err != nil {
		f.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierOptions{Keys: []ed25519.PublicKey{s.PublicKey()}, Issuer: iss, Audience: aud, Now: now})
	if err != nil {
		f.Fatal(err)
	}
	// Fixed claims: Ed25519 is deterministic, so every fuzz worker derives
	// the same good token.
	signed := registry.Claims{
		Issuer: iss, Audience: aud, Subject: "did:theprotocol:6274f556-151c-43e4-9a70-721177931091",
		IssuedAt: 1_800_000_000, NotBefore: 1_800_000_000, ExpiresAt: 1_800_000_900, ID: "0190aaaa-0000-7000-8000-000000000001",
		Scope: registry.ScopeAgent, Registry: "alpha-main", Frame: "alpha", Generation: 1,
	}
	good, err := s.Sign(signed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok)
		if err != nil {
			if apperr.CodeOf(err) != apperr.Unauthenticated {
				t.Fatalf("rejection with code %s: %v", apperr.CodeOf(err), err)
			}
			return
		}
		if tok != good {
			// Ed25519 signatures are non-malleable under strict decoding:
			// only the exact token we signed can verify.
			t.Fatalf("a different token verified: %q (%+v)", tok, c)
		}
		// The accepted token must carry exactly the claims we signed, and
		// those claims, signed again, must give back the same bytes.
		if !reflect.DeepEqual(c, signed) {
			t.Fatalf("verified claims %+v, signed %+v", c, signed)
		}
		again, err := s.Sign(c)
		if err != nil || again != tok {
			t.Fatalf("verified claims re-sign to %q (%v), not the token", again, err)
		}
	})
}
