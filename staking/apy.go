package staking

import (
	"fmt"
	"math/big"
)

// Curve is the dynamic base rate as a function of the TVL ratio r
// (staked / circulating):
//
//	base(r) = Floor + (Ceiling − Floor) / (1 + e^(Steepness · (r − Midpoint)))
//
// a logistic decay from Ceiling (nothing staked) towards Floor (everything
// staked), halfway at Midpoint. At or above BreakerRatio the circuit breaker
// trips and the base rate is BreakerBase: the network stops paying a
// dynamic yield for locking even more capital. Ratios and rates are basis
// points; Steepness is per whole (100 %) of ratio. The result is rounded
// down to a whole basis point.
type Curve struct {
	CeilingBps      int64
	FloorBps        int64
	MidpointBps     int64
	Steepness       int64
	BreakerRatioBps int64
	BreakerBaseBps  int64
}

// DefaultCurve reproduces the whitepaper's illustrative table at its typical
// TVL ratio of 50 %: base 13.1 %, so flexible 13.1 %, 30 d 14.5 %, 90 d
// 15.9 %, 180 d 17.0 %, 365 d 18.3 %.
var DefaultCurve = Curve{
	CeilingBps:      2200,
	FloorBps:        420,
	MidpointBps:     5000,
	Steepness:       8,
	BreakerRatioBps: 8500,
	BreakerBaseBps:  0,
}

// Validate checks the parameters.
func (c Curve) Validate() error {
	switch {
	case c.FloorBps < 0 || c.CeilingBps < c.FloorBps || c.CeilingBps > BpsPerWhole:
		return fmt.Errorf("apy curve: need 0 ≤ floor ≤ ceiling ≤ 10000 bps")
	case c.MidpointBps < 0 || c.MidpointBps > BpsPerWhole:
		return fmt.Errorf("apy curve: midpoint must be 0..10000 bps")
	case c.Steepness < 0 || c.Steepness > 100:
		return fmt.Errorf("apy curve: steepness must be 0..100")
	case c.BreakerRatioBps <= 0 || c.BreakerBaseBps < 0 || c.BreakerBaseBps > c.CeilingBps:
		return fmt.Errorf("apy curve: breaker ratio must be positive and its base rate 0..ceiling")
	}
	return nil
}

// fixedScale is the fixed-point scale of the curve's intermediate values
// (10^30: far below any rounding that could move a whole basis point).
var fixedScale = new(big.Int).Exp(big.NewInt(10), big.NewInt(30), nil)

// BaseBps is the base rate at TVL ratio ratioBps.
func (c Curve) BaseBps(ratioBps int64) int64 {
	if ratioBps < 0 {
		ratioBps = 0
	}
	if ratioBps >= c.BreakerRatioBps {
		return c.BreakerBaseBps
	}
	// x = Steepness · (r − Midpoint) / 10000, in fixed point.
	x := big.NewInt(c.Steepness * (ratioBps - c.MidpointBps))
	x.Mul(x, fixedScale)
	x.Quo(x, big.NewInt(BpsPerWhole))
	e := expFixed(x)
	// (Ceiling − Floor) · S / (S + e), rounded down.
	num := big.NewInt(c.CeilingBps - c.FloorBps)
	num.Mul(num, fixedScale)
	den := new(big.Int).Add(fixedScale, e)
	num.Quo(num, den)
	return c.FloorBps + num.Int64()
}

// TierAPY is one tier's live rate.
type TierAPY struct {
	Tier       Tier
	BaseBps    int64
	APYBps     int64 // base + premium
	BreakerHit bool
}

// APYs returns every tier's APY at ratioBps, in Tiers order, with the
// build-time premiums.
func (c Curve) APYs(ratioBps int64) []TierAPY {
	return c.APYsWith(ratioBps, nil)
}

// APYsWith is APYs with premiums in force (a governed value per tier;
// tiers absent keep their build-time premium). The returned tiers carry
// the premium applied.
func (c Curve) APYsWith(ratioBps int64, premiums map[TierID]int64) []TierAPY {
	base := c.BaseBps(ratioBps)
	out := make([]TierAPY, len(Tiers))
	for i, t := range Tiers {
		if p, ok := premiums[t.ID]; ok {
			t.PremiumBps = p
		}
		out[i] = TierAPY{Tier: t, BaseBps: base, APYBps: base + t.PremiumBps, BreakerHit: ratioBps >= c.BreakerRatioBps}
	}
	return out
}

// expFixed returns e^(x/S)·S for x in fixed point (S = fixedScale),
// truncated: exact integer arithmetic, so every node computes the same
// rates. Range reduction halves x until |x| < S/2, sums the Taylor series
// and squares back.
func expFixed(x *big.Int) *big.Int {
	neg := x.Sign() < 0
	ax := new(big.Int).Abs(x)
	half := new(big.Int).Rsh(fixedScale, 1)
	n := 0
	for ax.Cmp(half) >= 0 && n < 64 {
		ax.Rsh(ax, 1)
		n++
	}
	sum := new(big.Int).Set(fixedScale)
	term := new(big.Int).Set(fixedScale)
	for k := int64(1); k <= 60; k++ {
		term.Mul(term, ax)
		term.Quo(term, fixedScale)
		term.Quo(term, big.NewInt(k))
		if term.Sign() == 0 {
			break
		}
		sum.Add(sum, term)
	}
	for ; n > 0; n-- {
		sum.Mul(sum, sum)
		sum.Quo(sum, fixedScale)
	}
	if neg {
		// e^-x = S² / e^x
		inv := new(big.Int).Mul(fixedScale, fixedScale)
		return inv.Quo(inv, sum)
	}
	return sum
}
