package bonds_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/bonds"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/onboarding"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const avt = int64(100_000_000)

// temporalDown starts every workflow, takes every signal and answers no
// query.
type temporalDown struct{ client.Client }

func (temporalDown) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, nil
}

func (temporalDown) SignalWorkflow(context.Context, string, string, string, any) error { return nil }

func (temporalDown) QueryWorkflow(context.Context, string, string, string, ...any) (converter.EncodedValue, error) {
	return nil, errors.New("temporal is down")
}

// TestCriteriaAndStatus: the bond of an agent created by onboarding, read
// and moved through the service the workflow's activities use.
func TestCriteriaAndStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC()
	regDB, tegDB := testenv.NewDB(t, db.RoleRegistry), testenv.NewDB(t, db.RoleTEG)
	reg := registrystore.New(regDB.Pool, regDB.Name, "alpha", "alpha-main", nil)
	teg := ledgerstore.New(tegDB.Pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true})
	_, err := teg.Genesis(ctx, 1_000_000*avt)
	require.NoError(t, err)
	onb := &onboarding.Service{Registry: reg, Ledger: teg, Bond: &onboarding.Bond{Units: 50 * avt, Temporal: temporalDown{}, TaskQueue: "q"}}
	svc := &bonds.Service{Ledger: teg, Agents: reg, Temporal: temporalDown{}}

	su, err := onb.SignUpDeveloper(ctx, "Ada", "ada@example.org")
	require.NoError(t, err)
	dev := su.Developer.Subject()
	_, err = teg.Grant(ctx, ledgerstore.SupplyRequest{To: dev, AmountUnits: 200 * avt, Reason: "test", Actor: "admin:test", IdempotencyKey: "fund"})
	require.NoError(t, err)
	agent := func() string {
		_, hash := auth.NewSecret(auth.PrefixBootstrap)
		_, err := reg.CreateBootstrapToken(ctx, registrystore.NewBootstrapToken{ID: uuid.New(), Hash: hash, DeveloperID: su.Developer.ID, ExpiresAt: now.Add(time.Hour)}, now)
		require.NoError(t, err)
		a, err := onb.CreateAgent(ctx, hash, nil)
		require.NoError(t, err)
		return a.Agent.DID
	}
	alice, bob := agent(), agent()

	state := func(did string) string {
		s, err := svc.AgentState(ctx, did)
		require.NoError(t, err)
		return s
	}
	require.Equal(t, activities.AgentActive, state(alice))
	require.Equal(t, activities.AgentMissing, state("did:theprotocol:"+uuid.NewString()))
	score, err := svc.TrustScore(ctx, alice)
	require.NoError(t, err)
	require.Equal(t, int64(10000), score, "no scorer: every agent passes the trust floor")
	n, err := svc.TransferCount(ctx, alice)
	require.NoError(t, err)
	require.Zero(t, n)

	// Locked: the ledger's state stands when the workflow cannot be asked.
	st, err := svc.Status(ctx, alice)
	require.NoError(t, err)
	require.Equal(t, workflows.BondLocked, st.State)
	require.Equal(t, 50*avt, st.AmountUnits)
	require.Equal(t, 50*avt, st.LockedUnits)
	require.Nil(t, st.SettledAt)

	// The bond's lock, as the ledger recorded it, dates the bond.
	lockedAt, err := svc.LockedAt(ctx, alice)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), lockedAt, time.Minute)
	_, err = svc.LockedAt(ctx, "did:theprotocol:"+uuid.NewString())
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))

	// Matured and forfeited through the activities' port: the moves take
	// the amount the lock recorded (the port has no other).
	require.NoError(t, svc.ReleaseBond(ctx, alice, "bond-release-"+alice))
	st, err = svc.Status(ctx, alice)
	require.NoError(t, err)
	require.Equal(t, workflows.BondMatured, st.State)
	require.Zero(t, st.LockedUnits)
	require.NotNil(t, st.SettledAt)
	_, err = onb.DeregisterAgent(ctx, bob, dev)
	require.NoError(t, err)
	require.Equal(t, activities.AgentDeregistered, state(bob))
	require.NoError(t, svc.ForfeitBond(ctx, bob, "bond-forfeit-"+bob))
	st, err = svc.Status(ctx, bob)
	require.NoError(t, err)
	require.Equal(t, workflows.BondForfeited, st.State)

	// A second move of a settled bond is refused with a code the activity
	// treats as final.
	err = svc.ForfeitBond(ctx, alice, "bond-forfeit-"+alice)
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err), "%v", err)
	// An agent without a bond.
	_, err = svc.Status(ctx, "did:theprotocol:"+uuid.NewString())
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	require.Equal(t, apperr.NotFound, apperr.CodeOf(svc.VoidBond(ctx, "did:theprotocol:"+uuid.NewString(), "k")))

	// A void returns the bond to the wallet that locked it.
	carol := agent()
	wallet := func() int64 {
		b, err := teg.Balances(ctx, dev)
		require.NoError(t, err)
		for _, bb := range b.Buckets {
			if bb.Bucket == "liquid" {
				return bb.Units
			}
		}
		return 0
	}
	before := wallet()
	require.NoError(t, svc.VoidBond(ctx, carol, "bond-void-"+carol))
	require.Equal(t, before+50*avt, wallet())
	st, err = svc.Status(ctx, carol)
	require.NoError(t, err)
	require.Equal(t, workflows.BondVoided, st.State)
}
