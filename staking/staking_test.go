package staking

import (
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The table in README.md: base rate by TVL ratio under DefaultCurve.
func TestDefaultCurveTable(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ ratio, base int64 }{
		{0, 2167}, {1000, 2130}, {2000, 2051}, {3000, 1900}, {4000, 1648}, {4500, 1485},
		{5000, 1310}, {5500, 1134}, {6000, 971}, {7000, 719}, {8000, 568}, {8499, 522},
		{8500, 0}, {10000, 0}, {-5, 2167},
	} {
		require.Equal(t, c.base, DefaultCurve.BaseBps(c.ratio), "ratio %d bps", c.ratio)
	}
	require.NoError(t, DefaultCurve.Validate())
}

// The whitepaper's illustrative table (§5.4) at the typical 50 % TVL ratio.
func TestWhitepaperTiers(t *testing.T) {
	t.Parallel()
	want := map[TierID]int64{Flexible: 1310, Lock30: 1450, Lock90: 1590, Lock180: 1700, Lock365: 1830}
	apys := DefaultCurve.APYs(5000)
	require.Len(t, apys, 5)
	for _, a := range apys {
		require.Equal(t, want[a.Tier.ID], a.APYBps, a.Tier.ID)
		require.False(t, a.BreakerHit)
	}
	// The breaker drops the base but keeps the lock premiums.
	for _, a := range DefaultCurve.APYs(9000) {
		require.True(t, a.BreakerHit)
		require.Equal(t, a.Tier.PremiumBps, a.APYBps)
	}
}

// The fixed-point curve agrees with the float formula (floored) everywhere
// and never increases with the ratio below the breaker.
func TestCurveMatchesFloatAndIsMonotone(t *testing.T) {
	t.Parallel()
	c := DefaultCurve
	prev := int64(math.MaxInt64)
	for r := int64(0); r < c.BreakerRatioBps; r += 7 {
		got := c.BaseBps(r)
		f := float64(c.FloorBps) + float64(c.CeilingBps-c.FloorBps)/(1+math.Exp(float64(c.Steepness)*float64(r-c.MidpointBps)/10000))
		require.InDelta(t, math.Floor(f), float64(got), 1, "ratio %d", r)
		require.LessOrEqual(t, got, prev)
		require.GreaterOrEqual(t, got, c.FloorBps)
		prev = got
	}
}

func TestExpFixed(t *testing.T) {
	t.Parallel()
	for _, x := range []float64{0, 0.5, 1, -1, 2.5, -4, 10, -10} {
		xf := new(bigInt).SetInt64(int64(x * 1e6))
		xf.Mul(xf, fixedScale)
		xf.Quo(xf, new(bigInt).SetInt64(1e6))
		got := new(bigFloat).SetInt(expFixed(xf))
		got.Quo(got, new(bigFloat).SetInt(fixedScale))
		g, _ := got.Float64()
		require.InEpsilon(t, math.Exp(x), g, 1e-12, "e^%v", x)
	}
}

func TestTiers(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		id     string
		locked bool
		unlock time.Time
	}{
		{"flexible", false, time.Time{}},
		{"30d", true, start.AddDate(0, 0, 30)},
		{"90d", true, start.AddDate(0, 0, 90)},
		{"180d", true, start.AddDate(0, 0, 180)},
		{"365d", true, start.AddDate(0, 0, 365)},
	} {
		tier, err := TierByID(c.id)
		require.NoError(t, err)
		require.Equal(t, c.locked, tier.Locked())
		require.Equal(t, c.unlock, tier.UnlockAt(start))
		require.Equal(t, c.id, string(Tiers[TierIndex(tier.ID)].ID))
	}
	_, err := TierByID("7d")
	require.ErrorContains(t, err, "unknown tier")
	require.Equal(t, -1, TierIndex("x"))
}

func TestRewardArithmetic(t *testing.T) {
	t.Parallel()
	const avt = int64(100_000_000)
	for _, c := range []struct {
		principal, apy, want int64
	}{
		{100 * avt, 1310, 3_589_041},                 // 100 AVT × 13.1 % / 365 = 0.03589041…
		{10 * avt, 1830, 501_369},                    // 10 AVT at 18.3 %
		{1, 1310, 0},                                 // dust rounds down to nothing
		{math.MaxInt64, 2200, 5_559_292_734_542_604}, // 128-bit intermediate: no overflow
		{100 * avt, 0, 0},
	} {
		got, err := DailyReward(c.principal, c.apy)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "%d @ %d", c.principal, c.apy)
	}
	// Pro rata rounds down; the factor never exceeds 1.
	num, den := PayFactor(1000, 250)
	require.Equal(t, [2]int64{250, 1000}, [2]int64{num, den})
	r, err := ProRata(3, num, den)
	require.NoError(t, err)
	require.Equal(t, int64(0), r)
	num, den = PayFactor(1000, 5000)
	require.Equal(t, [2]int64{1, 1}, [2]int64{num, den})
	num, den = PayFactor(1000, -3)
	require.Equal(t, [2]int64{0, 1000}, [2]int64{num, den})

	o, v, err := Split(1001, 1000) // 10 % commission
	require.NoError(t, err)
	require.Equal(t, [2]int64{901, 100}, [2]int64{o, v}, "the validator's cut rounds down")
	o, v, err = Split(1001, 0)
	require.NoError(t, err)
	require.Equal(t, [2]int64{1001, 0}, [2]int64{o, v})
	_, _, err = Split(1, 10001)
	require.Error(t, err)

	p, err := SlashPenalty(1001)
	require.NoError(t, err)
	require.Equal(t, int64(101), p, "the penalty rounds up")
	require.Equal(t, int64(0), TVLRatioBps(5, 0))
	require.Equal(t, int64(3333), TVLRatioBps(1, 3))
}

type (
	bigInt   = big.Int
	bigFloat = big.Float
)
