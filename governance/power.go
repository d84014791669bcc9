package governance

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/theprotocol-dev/theprotocol/money"
)

// TMax is the longest lock: a stake locked for TMax starts at the full
// multiplier 1.0.
const TMax = 365 * 24 * time.Hour

// MultiplierDen is the denominator of every lock multiplier: the published
// multipliers have three decimals, so each is an exact ratio n/1000.
const MultiplierDen = 1000

// LockOption is one row of the lock-option table: a lock length and the
// multiplier its power starts at.
type LockOption struct {
	Name    string
	Lock    time.Duration // 0 for flexible
	MultNum int64         // multiplier = MultNum / MultiplierDen
}

// Multiplier renders the multiplier as a decimal string ("0.019").
func (o LockOption) Multiplier() string {
	return fmt.Sprintf("%d.%03d", o.MultNum/MultiplierDen, o.MultNum%MultiplierDen)
}

// Flexible is the floor option: an unlocked stake.
const Flexible = "flexible"

// LockOptions is the table, shortest lock first. For a locked option the
// multiplier is the whitepaper's (t_lock − t_elapsed) / T_max at the start
// of the lock (L / 365 days), rounded to the three decimals it publishes
// (7/365 = 0.0192 → 0.019, 30/365 = 0.0822 → 0.082, …). We take the
// published figure as exact, so the power at lock start equals the table
// everyone reads, and decay it linearly to the end of the lock.
//
// The staking tiers offer flexible, 30d, 90d, 180d and 365d; 7d is in the
// table because governance publishes it, and a position maps to the option
// of its tier (OptionForTier).
var LockOptions = []LockOption{
	{Flexible, 0, 10},
	{"7d", 7 * 24 * time.Hour, 19},
	{"30d", 30 * 24 * time.Hour, 82},
	{"90d", 90 * 24 * time.Hour, 247},
	{"180d", 180 * 24 * time.Hour, 493},
	{"365d", 365 * 24 * time.Hour, 1000},
}

// OptionByName returns the option called name.
func OptionByName(name string) (LockOption, bool) {
	for _, o := range LockOptions {
		if o.Name == name {
			return o, true
		}
	}
	return LockOption{}, false
}

// ISqrt returns floor(√x) for x ≥ 0 (0 for negative x), exactly: the
// float estimate is only a starting point, corrected by integer
// comparisons, so the answer does not depend on the machine's floating
// point and is right at the int64 edges (ISqrt(MaxInt64) = 3037000499).
func ISqrt(x int64) int64 {
	if x <= 0 {
		return 0
	}
	r := uint64(math.Sqrt(float64(x)))
	ux := uint64(x)
	// r may be off by one or two either way after float rounding; r*r is
	// compared in 128 bits so it cannot wrap.
	for {
		hi, lo := bits.Mul64(r, r)
		if hi == 0 && lo <= ux {
			break
		}
		r--
	}
	for {
		n := r + 1
		hi, lo := bits.Mul64(n, n)
		if hi != 0 || lo > ux {
			break
		}
		r = n
	}
	return int64(r)
}

// WeightRoot applies an option's multiplier and linear decay to a square
// root already taken (a position's share of √x, see Apportion):
//
//	flexible: floor(root × 10 / 1000)
//	locked:   max(floor(root × m × remaining / (1000 × L)), flexible floor)
//
// remaining is the time left of the lock (unlock_at − now), clamped to
// [0, L]. A locked stake never counts less than the same stake held
// flexible: at and after its end it is worth what a flexible stake is,
// since its owner could turn it into one. Rounding: down, once, on the
// exact 128-bit product.
func WeightRoot(root int64, o LockOption, remaining time.Duration) int64 {
	if root <= 0 {
		return 0
	}
	floor := root * LockOptions[0].MultNum / MultiplierDen // root ≤ 3.04e9: no overflow
	if o.Lock <= 0 {
		return floor
	}
	if remaining < 0 {
		remaining = 0
	}
	if remaining > o.Lock {
		remaining = o.Lock
	}
	secsLeft := int64(remaining / time.Second)
	secsLock := int64(o.Lock / time.Second)
	// root × m ≤ 3.04e12; × secsLeft ≤ 3.2e7 needs 128 bits, which
	// MulDivDown has; the quotient ≤ root fits.
	v, err := money.MulDivDown(root*o.MultNum, secsLeft, secsLock*MultiplierDen)
	if err != nil { // unreachable for root ≤ ISqrt(MaxInt64)
		panic(fmt.Sprintf("governance: weight overflow: %v", err))
	}
	if v < floor {
		return floor
	}
	return v
}

// Power is the voting power of a single stake of units under option o
// with remaining time left on its lock: WeightRoot(ISqrt(units), …).
func Power(units int64, o LockOption, remaining time.Duration) int64 {
	return WeightRoot(ISqrt(units), o, remaining)
}
