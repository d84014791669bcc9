package federation_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/federation"
	"github.com/theprotocol-dev/theprotocol/federation/cardsig"
	"github.com/theprotocol-dev/theprotocol/identity"
)

// memCards is an in-memory card store: keys, cursors and what Apply kept.
type memCards struct {
	keys    map[[2]string]cardsig.KeyAttestation
	cursors map[string]int64
	applied []cardsig.Signed
}

func (m *memCards) SignPending(context.Context, string, registrystore.SignFunc, time.Time) (int, error) {
	return 0, nil
}
func (m *memCards) Feed(context.Context, registrystore.FeedQuery) ([]registrystore.StoredCard, error) {
	return nil, nil
}
func (m *memCards) View(context.Context, string, string) ([]registrystore.StoredCard, error) {
	return nil, nil
}
func (m *memCards) Key(_ context.Context, origin, keyID string) (registrystore.CardKey, error) {
	a, ok := m.keys[[2]string{origin, keyID}]
	if !ok {
		return registrystore.CardKey{}, apperr.New(apperr.NotFound, "no key")
	}
	return registrystore.CardKey{Attestation: a}, nil
}
func (m *memCards) PutKey(_ context.Context, a cardsig.KeyAttestation, _ time.Time) error {
	m.keys[[2]string{a.Registry, a.KeyID}] = a
	return nil
}
func (m *memCards) Cursor(_ context.Context, peer string) (int64, error) { return m.cursors[peer], nil }
func (m *memCards) Apply(_ context.Context, peer string, cards []cardsig.Signed, next int64, _ time.Time) (registrystore.ApplyResult, error) {
	m.applied = append(m.applied, cards...)
	m.cursors[peer] = next
	return registrystore.ApplyResult{Stored: len(cards)}, nil
}

// frame is a test frame: a CA and, per registry, a card key and its
// attestation.
type frame struct {
	td   spiffeid.TrustDomain
	ca   *identity.CA
	keys map[string]ed25519.PrivateKey
	att  map[string]cardsig.KeyAttestation
}

func newFrame(t *testing.T, regs ...string) *frame {
	td := spiffeid.RequireTrustDomainFromString("fs.theprotocol.test")
	ca, err := identity.NewEphemeralCA(td, identity.CAOptions{})
	require.NoError(t, err)
	f := &frame{td: td, ca: ca, keys: map[string]ed25519.PrivateKey{}, att: map[string]cardsig.KeyAttestation{}}
	for _, r := range regs {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		f.keys[r] = k
		f.att[r] = f.attest(t, r, r, k)
	}
	return f
}

// attest binds key to claimed with the SVID of signer.
func (f *frame) attest(t *testing.T, signer, claimed string, key ed25519.PrivateKey) cardsig.KeyAttestation {
	svid, err := f.ca.Issue(spiffeid.RequireFromSegments(f.td, "teg", signer), time.Hour)
	require.NoError(t, err)
	a, err := cardsig.Attest(svid, claimed, key.Public().(ed25519.PublicKey), time.Now())
	require.NoError(t, err)
	return a
}

func (f *frame) card(t *testing.T, signer, origin string, n int, hops int) cardsig.Signed {
	did := "did:theprotocol:0b6f3c1e-8d4a-4c55-9a51-6a2f7e9d1c0" + string(rune('0'+n))
	s, err := cardsig.Sign(f.keys[signer], cardsig.Card{DID: did, Origin: origin, Version: 1, SignedAt: time.Now(),
		Body: []byte(`{"name":"a","description":"","url":"https://a.example/x","skills":[]}`)})
	require.NoError(t, err)
	s.Hops = hops
	return s
}

// TestPullOnceKeepsOnlyWhatVerifies: from one page a receiver keeps the
// genuine cards (one more hop) and rejects, by reason, an altered card, a
// card signed by a relay in another's name, a card at the hop bound and
// a key attestation signed by the wrong registry; its own cards coming
// back are skipped; the cursor moves past the page. A page moving the
// cursor back is refused whole; an inactive peer is not pulled.
func TestPullOnceKeepsOnlyWhatVerifies(t *testing.T) {
	f := newFrame(t, "self", "relay", "origin", "other")
	store := &memCards{keys: map[[2]string]cardsig.KeyAttestation{}, cursors: map[string]int64{"relay": 7}}
	var page federation.FeedPage
	active, fetched := true, 0
	cs := &federation.CardSync{
		Self: "self", TrustDomain: f.td, Store: store, Key: f.keys["self"], Bundles: f.ca.X509Bundle(), MaxHops: 3,
		Peer: func(context.Context, string) (federation.PeerLink, error) {
			return federation.PeerLink{Active: active, BaseURL: "https://relay"}, nil
		},
		Fetch: func(_ context.Context, _, _ string, after int64, _ int) (federation.FeedPage, int64, error) {
			fetched++
			require.EqualValues(t, store.cursors["relay"], after)
			return page, 100, nil
		},
		Metrics: federation.NewCardMetrics(nil),
	}
	genuine := f.card(t, "origin", "origin", 1, 1)
	altered := f.card(t, "origin", "origin", 2, 1)
	altered.Body = []byte(`{"name":"b","description":"","url":"https://a.example/x","skills":[]}`)
	inOthersName := f.card(t, "relay", "origin", 3, 0)
	atBound := f.card(t, "origin", "origin", 4, 3)
	own := f.card(t, "self", "self", 5, 1)
	byOther := f.card(t, "other", "other", 6, 1)
	page = federation.FeedPage{Next: 12,
		Cards: []cardsig.Signed{genuine, altered, inOthersName, atBound, own, byOther},
		Keys:  []cardsig.KeyAttestation{f.att["origin"], f.att["relay"], f.attest(t, "relay", "other", f.keys["other"])}}

	res, err := cs.PullOnce(context.Background(), "relay")
	require.NoError(t, err)
	require.True(t, res.Active)
	require.Equal(t, 6, res.Received)
	require.Equal(t, 1, res.Stored)
	require.Equal(t, 4, res.Rejected)
	require.EqualValues(t, 12, store.cursors["relay"])
	require.Len(t, store.applied, 1)
	require.Equal(t, genuine.DID, store.applied[0].DID)
	require.Equal(t, 2, store.applied[0].Hops, "one more hop")
	for reason, want := range map[string]float64{"signature": 1, "unknown_key": 2, "hops": 1, "bad_key": 1} {
		require.Equal(t, want, cs.Metrics.Rejected(reason), reason)
	}

	page = federation.FeedPage{Next: 3}
	_, err = cs.PullOnce(context.Background(), "relay")
	require.Error(t, err, "a cursor moving back")
	require.EqualValues(t, 12, store.cursors["relay"])

	active = false
	before := fetched
	res, err = cs.PullOnce(context.Background(), "relay")
	require.NoError(t, err)
	require.False(t, res.Active)
	require.Equal(t, before, fetched, "an inactive peer is not pulled")
}
