package cardsig_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
	"testing/quick"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/federation/cardsig"
	"github.com/theprotocol-dev/theprotocol/identity"
)

const did = "did:theprotocol:0b6f3c1e-8d4a-4c55-9a51-6a2f7e9d1c01"

func newKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

func sample(t *testing.T, key ed25519.PrivateKey) cardsig.Signed {
	s, err := cardsig.Sign(key, cardsig.Card{DID: did, Origin: "alpha-op1", Version: 3,
		Body: []byte(`{"name":"translator","url":"https://a.example/x"}`), SignedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)})
	require.NoError(t, err)
	return s
}

// TestSignVerifyTamper: a signed card verifies with its origin's key; any
// change to a signed field, a signature from another key, or verification
// with another key is refused. The hop count is not signed.
func TestSignVerifyTamper(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	good := sample(t, key)
	require.NoError(t, good.Verify(pub))
	hopped := good
	hopped.Hops = 3
	require.NoError(t, hopped.Verify(pub), "relays raise the hop count")

	other := newKey(t)
	for _, tc := range []struct {
		name   string
		tamper func(s *cardsig.Signed)
		pub    ed25519.PublicKey
	}{
		{"body", func(s *cardsig.Signed) { s.Body = []byte(`{"name":"translator","url":"https://evil.example/x"}`) }, pub},
		{"did", func(s *cardsig.Signed) { s.DID = "did:theprotocol:0b6f3c1e-8d4a-4c55-9a51-6a2f7e9d1c02" }, pub},
		{"origin", func(s *cardsig.Signed) { s.Origin = "alpha-op2" }, pub},
		{"version", func(s *cardsig.Signed) { s.Version++ }, pub},
		{"made a tombstone", func(s *cardsig.Signed) { s.Deleted, s.Body = true, nil }, pub},
		{"time", func(s *cardsig.Signed) { s.SignedAt = s.SignedAt.Add(time.Microsecond) }, pub},
		{"signature bit", func(s *cardsig.Signed) { s.Signature = append([]byte(nil), s.Signature...); s.Signature[0] ^= 1 }, pub},
		{"no signature", func(s *cardsig.Signed) { s.Signature = nil }, pub},
		{"re-signed by a relay", func(s *cardsig.Signed) {
			r, err := cardsig.Sign(other, s.Card)
			require.NoError(t, err)
			*s = r
		}, pub},
		{"a relay's key named as the origin's", func(s *cardsig.Signed) {
			r, err := cardsig.Sign(other, s.Card)
			require.NoError(t, err)
			*s = r
		}, other.Public().(ed25519.PublicKey)[:16]},
		{"verified with another key", func(*cardsig.Signed) {}, other.Public().(ed25519.PublicKey)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.tamper(&s)
			require.Error(t, s.Verify(tc.pub))
		})
	}

	for _, tc := range []struct {
		name string
		card cardsig.Card
	}{
		{"not a DID", cardsig.Card{DID: "did:web:x", Origin: "a", Version: 1, SignedAt: time.Now()}},
		{"origin with a newline", cardsig.Card{DID: did, Origin: "a\nb", Version: 1, SignedAt: time.Now()}},
		{"version 0", cardsig.Card{DID: did, Origin: "a", Version: 0, SignedAt: time.Now()}},
		{"tombstone with a body", cardsig.Card{DID: did, Origin: "a", Version: 1, Deleted: true, Body: []byte("{}"), SignedAt: time.Now()}},
		{"no time", cardsig.Card{DID: did, Origin: "a", Version: 1}},
		{"body too large", cardsig.Card{DID: did, Origin: "a", Version: 1, Body: make([]byte, cardsig.MaxBodyBytes+1), SignedAt: time.Now()}},
	} {
		t.Run("refused to sign: "+tc.name, func(t *testing.T) {
			_, err := cardsig.Sign(key, tc.card)
			require.Error(t, err)
		})
	}
}

// TestSignVerifyProperty: for arbitrary bodies and versions, a signed card
// verifies, and flipping any one byte of its body does not.
func TestSignVerifyProperty(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	f := func(body []byte, version uint32, deleted bool, at int64, flip uint16) bool {
		if deleted {
			body = nil
		}
		if len(body) > cardsig.MaxBodyBytes {
			body = body[:cardsig.MaxBodyBytes]
		}
		s, err := cardsig.Sign(key, cardsig.Card{DID: did, Origin: "r1", Version: int64(version) + 1, Deleted: deleted, Body: body,
			SignedAt: time.Unix(0, at%(1<<62)).UTC()})
		if err != nil || s.Verify(pub) != nil {
			return false
		}
		if len(body) == 0 {
			return true
		}
		t := s
		t.Body = append([]byte(nil), body...)
		t.Body[int(flip)%len(body)] ^= 0x20
		return t.Verify(pub) != nil
	}
	require.NoError(t, quick.Check(f, &quick.Config{MaxCount: 2000}))
}

// TestKeyAttestation: a registry's SVID binds its card key; the binding
// verifies against the frame's bundle and names that registry only, and
// neither another trust domain's SVID, another workload of the frame, nor
// a swapped key passes.
func TestKeyAttestation(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("fx.theprotocol.test")
	ca, err := identity.NewEphemeralCA(td, identity.CAOptions{})
	require.NoError(t, err)
	svid, err := ca.Issue(spiffeid.RequireFromSegments(td, "teg", "r1"), time.Hour)
	require.NoError(t, err)
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	a, err := cardsig.Attest(svid, "r1", pub, time.Now())
	require.NoError(t, err)
	require.NoError(t, a.Verify(ca.X509Bundle(), td))

	claimOther := a
	claimOther.Registry = "r2"
	require.Error(t, claimOther.Verify(ca.X509Bundle(), td), "the SVID is r1's, not r2's")

	swapped := a
	swapped.PublicKey = newKey(t).Public().(ed25519.PublicKey)
	swapped.KeyID = cardsig.KeyID(swapped.PublicKey)
	require.Error(t, swapped.Verify(ca.X509Bundle(), td), "a relay cannot substitute its own key")

	agent, err := ca.Issue(spiffeid.RequireFromSegments(td, "agent", "r1"), time.Hour)
	require.NoError(t, err)
	byAgent, err := cardsig.Attest(agent, "r1", pub, time.Now())
	require.NoError(t, err)
	require.Error(t, byAgent.Verify(ca.X509Bundle(), td), "only the registry's TEG SVID attests")

	otherTD := spiffeid.RequireTrustDomainFromString("fy.theprotocol.test")
	otherCA, err := identity.NewEphemeralCA(otherTD, identity.CAOptions{})
	require.NoError(t, err)
	foreign, err := otherCA.Issue(spiffeid.RequireFromSegments(otherTD, "teg", "r1"), time.Hour)
	require.NoError(t, err)
	byForeign, err := cardsig.Attest(foreign, "r1", pub, time.Now())
	require.NoError(t, err)
	require.Error(t, byForeign.Verify(ca.X509Bundle(), td), "another frame's SVID does not chain to ours")

	late := a
	late.IssuedAt = time.Now().Add(48 * time.Hour)
	require.Error(t, late.Verify(ca.X509Bundle(), td), "changing the time breaks the signature or the validity window")
}

// BenchmarkVerifyCard: a receiver's cost per card (signature check), with
// the encoded size of a typical card on the wire.
func BenchmarkVerifyCard(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	pub := key.Public().(ed25519.PublicKey)
	s, err := cardsig.Sign(key, cardsig.Card{DID: did, Origin: "alpha-op1", Version: 1, SignedAt: time.Now(),
		Body: []byte(`{"name":"translator","description":"translates text between forty languages","url":"https://agents.example/translator","skills":[{"id":"translate","name":"Translate"}]}`)})
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := json.Marshal(s)
	b.ResetTimer()
	for range b.N {
		if err := s.Verify(pub); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(raw)), "wire-bytes/card")
}
