package governance

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/ledger"
)

// The executable changes are a closed typed set: each kind exactly with
// its own payload, valid.
func TestChangeValidation(t *testing.T) {
	fc := &ledger.FeeCurve{BaseBps: 10, MaxBps: 200}
	sp := func(tier string, bps int64) *StakingPremium { return &StakingPremium{Tier: tier, PremiumBps: bps} }
	for _, c := range []struct {
		name string
		c    Change
		ok   bool
	}{
		{"fee curve", Change{Kind: ChangeFeeCurve, FeeCurve: fc}, true},
		{"fee curve without payload", Change{Kind: ChangeFeeCurve}, false},
		{"fee curve with another payload", Change{Kind: ChangeFeeCurve, FeeCurve: fc, StakingPremium: sp("365d", 600)}, false},
		{"fee curve above the cap", Change{Kind: ChangeFeeCurve, FeeCurve: &ledger.FeeCurve{BaseBps: 10, MaxBps: 501}}, false},
		{"premium", Change{Kind: ChangeStakingPremium, StakingPremium: sp("365d", 600)}, true},
		{"premium zero", Change{Kind: ChangeStakingPremium, StakingPremium: sp("flexible", 0)}, true},
		{"premium at its bound", Change{Kind: ChangeStakingPremium, StakingPremium: sp("30d", MaxStakingPremiumBps)}, true},
		{"premium above its bound", Change{Kind: ChangeStakingPremium, StakingPremium: sp("30d", MaxStakingPremiumBps+1)}, false},
		{"premium negative", Change{Kind: ChangeStakingPremium, StakingPremium: sp("30d", -1)}, false},
		{"premium of an unknown tier", Change{Kind: ChangeStakingPremium, StakingPremium: sp("7d", 100)}, false},
		{"premium without payload", Change{Kind: ChangeStakingPremium}, false},
		{"premium with another payload", Change{Kind: ChangeStakingPremium, StakingPremium: sp("30d", 1), FeeCurve: fc}, false},
		{"unknown kind", Change{Kind: "mint"}, false},
	} {
		err := c.c.Validate()
		if c.ok {
			require.NoError(t, err, c.name)
			back, err := DecodeChange(c.c.Encode())
			require.NoError(t, err, c.name)
			require.Equal(t, c.c, back, c.name)
		} else {
			require.Error(t, err, c.name)
		}
	}
}
