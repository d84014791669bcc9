package registrystore_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/federation/cardsig"
	"github.com/theprotocol-dev/theprotocol/registry"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// TestSignPendingMissesNoChange: an agent's creation, card changes and
// deregistration are each signed at the next version (the card's body
// re-encoded, the tombstone without one), a change committed while a
// signing pass runs is signed by the next pass rather than lost, and the
// feed orders the signed records by when they were written.
func TestSignPendingMissesNoChange(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleRegistry)
	s := registrystore.New(tdb.Pool, tdb.Name, "alpha", "alpha-main", nil)
	cards := registrystore.NewFederationCards(tdb.Pool)
	ctx := context.Background()
	now := time.Now().UTC()
	dev := newDeveloper(t, s, now)
	_, hash := auth.NewSecret(auth.PrefixBootstrap)
	_, err := s.CreateBootstrapToken(ctx, registrystore.NewBootstrapToken{ID: uuid.New(), Hash: hash, DeveloperID: dev.ID, ExpiresAt: now.Add(time.Hour)}, now)
	require.NoError(t, err)
	_, sh := auth.NewSecret(auth.PrefixClientSecret)
	card := registry.AgentCard{Name: "first", URL: "https://a.example/1", Skills: []registry.Skill{}}
	a, _, err := s.CreateAgent(ctx, registrystore.NewAgent{DID: registry.NewDID(), BootstrapTokenHash: hash, ClientID: auth.NewHandle(auth.PrefixClientID),
		ClientSecretHash: sh, Card: &card}, now)
	require.NoError(t, err)

	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sign := func(c cardsig.Card) (cardsig.Signed, error) { return cardsig.Sign(key, c) }
	n, err := cards.SignPending(ctx, "alpha-main", sign, now)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	feed := func() []registrystore.StoredCard {
		rows, err := cards.Feed(ctx, registrystore.FeedQuery{Caller: "peer", IDPrefix: "spiffe://alpha.theprotocol.test/teg/", MaxHops: 4, Limit: 10})
		require.NoError(t, err)
		return rows
	}
	got := feed()
	require.Len(t, got, 1)
	require.EqualValues(t, 1, got[0].Version)
	require.Contains(t, string(got[0].Body), `"https://a.example/1"`)
	require.NoError(t, got[0].Verify(key.Public().(ed25519.PublicKey)))
	n, err = cards.SignPending(ctx, "alpha-main", sign, now)
	require.NoError(t, err)
	require.Zero(t, n, "nothing changed")

	// A card change committed while a pass is signing: that pass signs
	// what it read, the next one signs the change.
	_, err = s.PublishCard(ctx, a.DID, registry.AgentCard{Name: "second", URL: "https://a.example/2", Skills: []registry.Skill{}}, now)
	require.NoError(t, err)
	changed := false
	n, err = cards.SignPending(ctx, "alpha-main", func(c cardsig.Card) (cardsig.Signed, error) {
		if !changed {
			changed = true
			_, err := s.PublishCard(ctx, a.DID, registry.AgentCard{Name: "third", URL: "https://a.example/3", Skills: []registry.Skill{}}, now)
			require.NoError(t, err)
		}
		return sign(c)
	}, now)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = cards.SignPending(ctx, "alpha-main", sign, now)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the change made during the pass is still pending")
	got = feed()
	require.Len(t, got, 1)
	require.EqualValues(t, 3, got[0].Version)
	require.Contains(t, string(got[0].Body), `"https://a.example/3"`)

	// Deregistered: a tombstone at the next version.
	_, err = s.DeregisterAgent(ctx, a.DID, "test", now)
	require.NoError(t, err)
	n, err = cards.SignPending(ctx, "alpha-main", sign, now)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got = feed()
	require.True(t, got[0].Deleted)
	require.Empty(t, got[0].Body)
	require.EqualValues(t, 4, got[0].Version)
	require.NoError(t, got[0].Verify(key.Public().(ed25519.PublicKey)))
}
