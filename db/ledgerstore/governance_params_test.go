package ledgerstore_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// A staking tier's APY premium is a governed parameter: it starts at the
// build-time value of every tier, a passing proposal changes it once its
// veto window ends, and the live APY table uses the new premium (the
// daily reward run reads the same table).
func TestGovernedStakingPremium(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	prems, err := e.store.StakingPremiums(e.ctx)
	require.NoError(t, err)
	for _, tier := range staking.Tiers {
		require.Equal(t, tier.PremiumBps, prems[tier.ID], "seeded from the build-time premium of %s", tier.ID)
	}
	alice := e.agent(1000 * avt)
	e.stake(alice, "365d", 400*avt, false, "a")
	before, err := e.store.StakingAPY(e.ctx, staking.DefaultCurve)
	require.NoError(t, err)

	id := uuid.New()
	_, err = e.store.CreateProposal(e.ctx, ledgerstore.ProposalInput{ID: id, Proposer: alice, MinPower: 1000, VetoWindow: time.Hour, Draft: governance.Draft{
		Title: "reward long locks more", Window: time.Hour, QuorumBps: 5000, ThresholdBps: 5000,
		Change: &governance.Change{Kind: governance.ChangeStakingPremium, StakingPremium: &governance.StakingPremium{Tier: "365d", PremiumBps: 800}},
	}})
	require.NoError(t, err)
	_, err = e.store.CastVote(e.ctx, id, alice, governance.Yes)
	require.NoError(t, err)
	e.clock.Advance(time.Hour)
	_, err = e.store.TallyProposal(e.ctx, id)
	require.NoError(t, err)
	e.clock.Advance(time.Hour)
	p, err := e.store.EnactProposal(e.ctx, id)
	require.NoError(t, err)
	require.Equal(t, governance.StateEnacted, p.State)

	prems, err = e.store.StakingPremiums(e.ctx)
	require.NoError(t, err)
	require.Equal(t, int64(800), prems[staking.Lock365])
	require.Equal(t, int64(390), prems[staking.Lock180], "other tiers untouched")
	after, err := e.store.StakingAPY(e.ctx, staking.DefaultCurve)
	require.NoError(t, err)
	i := staking.TierIndex(staking.Lock365)
	require.Equal(t, int64(800), after.Tiers[i].Tier.PremiumBps)
	require.Equal(t, after.Tiers[i].BaseBps+800, after.Tiers[i].APYBps)
	require.Equal(t, before.Tiers[i].BaseBps, after.Tiers[i].BaseBps, "the base rate did not move")
	require.Equal(t, 1, e.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1`, "enact-"+id.String()))
	e.checkInvariants()
}
