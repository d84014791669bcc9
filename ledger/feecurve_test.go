package ledger_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/ledger"
)

// The default curve is the fixed curve it replaces, count for count.
func TestDefaultFeeCurveMatchesFixedCurve(t *testing.T) {
	c := ledger.DefaultFeeCurve
	require.Equal(t, ledger.VelocityCountCap, c.CountCap())
	for n := 0; n < 200; n++ {
		require.Equal(t, ledger.FeeBpsForVelocity(n), c.BpsForVelocity(n), "prior=%d", n)
	}
}

// A governed curve is monotone, starts at its base, reaches its cap at
// CountCap and never exceeds it.
func TestGovernedFeeCurve(t *testing.T) {
	for _, c := range []ledger.FeeCurve{{0, 500}, {25, 100}, {100, 100}, {0, 0}, {10, 475}, {500, 500}} {
		require.NoError(t, c.Validate())
		require.Equal(t, c.BaseBps, c.BpsForVelocity(0))
		prev := int64(-1)
		for n := 0; n < 300; n++ {
			b := c.BpsForVelocity(n)
			require.GreaterOrEqual(t, b, prev)
			require.LessOrEqual(t, b, c.MaxBps)
			prev = b
		}
		require.Equal(t, c.MaxBps, c.BpsForVelocity(c.CountCap()), "%+v", c)
		if c.CountCap() > ledger.VelocityThreshold {
			require.Less(t, c.BpsForVelocity(c.CountCap()-1), c.MaxBps, "%+v", c)
		}
	}
	for _, c := range []ledger.FeeCurve{{-1, 10}, {60, 50}, {0, 501}} {
		require.Error(t, c.Validate(), "%+v", c)
	}
}
