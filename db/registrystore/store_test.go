package registrystore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/registry"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newStore(t *testing.T) *registrystore.Store {
	t.Helper()
	tdb := testenv.NewDB(t, db.RoleRegistry)
	return registrystore.New(tdb.Pool, tdb.Name, "alpha", "alpha-main", nil)
}

func newDeveloper(t *testing.T, s *registrystore.Store, now time.Time) registry.Developer {
	t.Helper()
	k := auth.NewAPIKey()
	id := uuid.New()
	d, err := s.CreateDeveloper(context.Background(), registrystore.NewDeveloper{
		ID: id, Name: "Dev " + id.String()[:8], Email: id.String() + "@example.org", APIKeyID: k.ID, APIKeyHash: k.Hash,
	}, now)
	require.NoError(t, err)
	return d
}

// N concurrent agent creations with one bootstrap token: exactly one wins.
func TestBootstrapTokenConsumedExactlyOnce(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	dev := newDeveloper(t, s, now)
	tok, hash := auth.NewSecret(auth.PrefixBootstrap)
	_ = tok
	_, err := s.CreateBootstrapToken(ctx, registrystore.NewBootstrapToken{ID: uuid.New(), Hash: hash, DeveloperID: dev.ID, ExpiresAt: now.Add(15 * time.Minute)}, now)
	require.NoError(t, err)

	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, sh := auth.NewSecret(auth.PrefixClientSecret)
			_, _, errs[i] = s.CreateAgent(ctx, registrystore.NewAgent{
				DID: registry.NewDID(), BootstrapTokenHash: hash, ClientID: auth.NewHandle(auth.PrefixClientID), ClientSecretHash: sh,
			}, now)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		require.Equal(t, apperr.Unauthenticated, apperr.CodeOf(err), "loser error: %v", err)
	}
	require.Equal(t, 1, ok, "exactly one creation consumes the token")
	var agents, events int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM agents`).Scan(&agents))
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_type = 'AgentRegistered'`).Scan(&events))
	require.Equal(t, 1, agents)
	require.Equal(t, 1, events)
}

func TestBootstrapTokenExpires(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	dev := newDeveloper(t, s, now)
	_, hash := auth.NewSecret(auth.PrefixBootstrap)
	_, err := s.CreateBootstrapToken(ctx, registrystore.NewBootstrapToken{ID: uuid.New(), Hash: hash, DeveloperID: dev.ID, ExpiresAt: now.Add(time.Minute)}, now)
	require.NoError(t, err)
	_, sh := auth.NewSecret(auth.PrefixClientSecret)
	_, _, err = s.CreateAgent(ctx, registrystore.NewAgent{DID: registry.NewDID(), BootstrapTokenHash: hash, ClientID: auth.NewHandle(auth.PrefixClientID), ClientSecretHash: sh}, now.Add(time.Minute))
	require.ErrorIs(t, err, registrystore.ErrBootstrapInvalid)

	n, err := s.Sweep(ctx, now.Add(2*time.Minute), 100)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

func TestOrganisationLastOwnerCannotLeave(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	owner := newDeveloper(t, s, now)
	other := newDeveloper(t, s, now)
	org, err := s.CreateOrganisation(ctx, uuid.New(), "Acme", owner.ID, now)
	require.NoError(t, err)

	_, err = s.InviteMember(ctx, org.ID, other.ID, registry.RoleMember, other.ID, now)
	require.Equal(t, apperr.Forbidden, apperr.CodeOf(err), "non-owners cannot invite")
	_, err = s.InviteMember(ctx, org.ID, other.ID, registry.RoleMember, owner.ID, now)
	require.NoError(t, err)
	_, err = s.InviteMember(ctx, org.ID, other.ID, registry.RoleMember, owner.ID, now)
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err))
	_, err = s.InviteMember(ctx, org.ID, uuid.New(), registry.RoleMember, owner.ID, now)
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	_, err = s.AcceptInvitation(ctx, org.ID, other.ID, now)
	require.NoError(t, err)

	_, err = s.RemoveMember(ctx, org.ID, owner.ID, owner.ID, now)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	_, err = s.RemoveMember(ctx, org.ID, owner.ID, other.ID, now)
	require.Equal(t, apperr.Forbidden, apperr.CodeOf(err))
	_, err = s.RemoveMember(ctx, org.ID, other.ID, other.ID, now)
	require.NoError(t, err, "members may leave")

	_, err = s.CreateOrganisation(ctx, uuid.New(), "ACME", other.ID, now)
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err), "names are unique case-insensitively")
}
