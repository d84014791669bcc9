// Package staking holds the staking rules (SPEC §6.4, whitepaper §5.4 and
// §5.5): the five lock tiers, the APY curve (a logistic decay in the
// network's TVL ratio with a circuit breaker), the daily reward with its
// pro-rata factor and validator split, the slashing penalty, and the
// state machine of a position (position.go: active, cooldown, closed,
// slashed; locks, cooldowns, maturity and slashing). Pure Go,
// integer and fixed-point arithmetic only; no I/O. The parameters and
// rounding rules are written down, with the tested values, in README.md.
package staking

import (
	"fmt"
	"time"

	"github.com/theprotocol-dev/theprotocol/money"
)

// Limits and constants.
const (
	// MinStakeUnits is the minimum stake in every tier: 10 AVT.
	MinStakeUnits = 10 * money.UnitsPerToken
	// Cooldown is the flexible tier's unstake cooldown.
	Cooldown = 7 * 24 * time.Hour
	// DaysPerYear converts an APY to a daily rate (simple, not compounded:
	// daily reward = principal × APY / 365).
	DaysPerYear = 365
	// SlashPenaltyBps is the enforcement penalty routed to the treasury.
	SlashPenaltyBps = 1000
	// BpsPerWhole is 100 % in basis points.
	BpsPerWhole = 10_000
)

// TierID names a lock tier.
type TierID string

// The five tiers.
const (
	Flexible TierID = "flexible"
	Lock30   TierID = "30d"
	Lock90   TierID = "90d"
	Lock180  TierID = "180d"
	Lock365  TierID = "365d"
)

// Tier is a lock tier: its term and its fixed APY premium.
type Tier struct {
	ID         TierID
	LockDays   int   // 0 for flexible
	PremiumBps int64 // added to the dynamic base rate
}

// Tiers lists the tiers in a fixed order (the reward run stores its rates
// in this order).
var Tiers = []Tier{
	{Flexible, 0, 0},
	{Lock30, 30, 140},
	{Lock90, 90, 280},
	{Lock180, 180, 390},
	{Lock365, 365, 520},
}

// TierByID returns the tier named id.
func TierByID(id string) (Tier, error) {
	for _, t := range Tiers {
		if string(t.ID) == id {
			return t, nil
		}
	}
	return Tier{}, fmt.Errorf("unknown tier %q (flexible, 30d, 90d, 180d or 365d)", id)
}

// TierIndex is t's position in Tiers (-1 if unknown).
func TierIndex(id TierID) int {
	for i, t := range Tiers {
		if t.ID == id {
			return i
		}
	}
	return -1
}

// Locked reports whether the tier is term-committed.
func (t Tier) Locked() bool { return t.LockDays > 0 }

// UnlockAt is the term end of a stake placed at start (zero for flexible).
func (t Tier) UnlockAt(start time.Time) time.Time {
	if !t.Locked() {
		return time.Time{}
	}
	return start.AddDate(0, 0, t.LockDays)
}

// TVLRatioBps is staked / circulating in basis points, rounded down (0 when
// nothing circulates).
func TVLRatioBps(stakedUnits, circulatingUnits int64) int64 {
	if circulatingUnits <= 0 || stakedUnits <= 0 {
		return 0
	}
	r, err := money.MulDivDown(stakedUnits, BpsPerWhole, circulatingUnits)
	if err != nil {
		return BpsPerWhole
	}
	return r
}

// DailyReward is the full (un-prorated) reward of one day on principal at
// apyBps: floor(principal × apyBps / (10000 × 365)). Rewards round down;
// the remainder stays in the treasury.
func DailyReward(principalUnits, apyBps int64) (int64, error) {
	if principalUnits <= 0 || apyBps <= 0 {
		return 0, nil
	}
	return money.MulDivDown(principalUnits, apyBps, BpsPerWhole*DaysPerYear)
}

// ProRata scales a reward by num/den (the treasury could cover only that
// fraction of the day), rounding down. num ≤ den.
func ProRata(rewardUnits, num, den int64) (int64, error) {
	if num >= den {
		return rewardUnits, nil
	}
	return money.MulDivDown(rewardUnits, num, den)
}

// PayFactor is the run's pro-rata factor: 1/1 when the treasury covers the
// day's total due, treasury/due otherwise.
func PayFactor(dueUnits, treasuryUnits int64) (num, den int64) {
	if dueUnits <= 0 || treasuryUnits >= dueUnits {
		return 1, 1
	}
	if treasuryUnits < 0 {
		treasuryUnits = 0
	}
	return treasuryUnits, dueUnits
}

// Split divides a reward between the position's owner and its validator:
// the validator gets floor(reward × commissionBps / 10000), the owner the
// rest, so the two always add up to the reward.
func Split(rewardUnits, commissionBps int64) (ownerUnits, validatorUnits int64, err error) {
	if commissionBps <= 0 {
		return rewardUnits, 0, nil
	}
	if commissionBps > BpsPerWhole {
		return 0, 0, fmt.Errorf("commission %d bps above 100%%", commissionBps)
	}
	v, err := money.MulDivDown(rewardUnits, commissionBps, BpsPerWhole)
	if err != nil {
		return 0, 0, err
	}
	return rewardUnits - v, v, nil
}

// SlashPenalty is the 10 % enforcement penalty on principal, rounded UP
// (like a fee: in favour of the commons).
func SlashPenalty(principalUnits int64) (int64, error) {
	return money.MulDivUp(principalUnits, SlashPenaltyBps, BpsPerWhole)
}
