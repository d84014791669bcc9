package ledger

import "fmt"

// FeeCurve is the governed part of the intra-registry fee curve: the base
// rate and the cap of the velocity scaling. BaseFeeBps and MaxFeeBps are
// its defaults, and MaxFeeBps is also the ceiling no governed curve may
// exceed (TransferFee refuses any rate above it). The window and the
// steps stay fixed.
type FeeCurve struct {
	BaseBps int64 `json:"base_bps"`
	MaxBps  int64 `json:"max_bps"`
}

// DefaultFeeCurve is the curve before any governance change.
var DefaultFeeCurve = FeeCurve{BaseBps: BaseFeeBps, MaxBps: MaxFeeBps}

// Validate accepts 0 ≤ base ≤ max ≤ MaxFeeBps.
func (c FeeCurve) Validate() error {
	if c.BaseBps < 0 || c.MaxBps < c.BaseBps || c.MaxBps > MaxFeeBps {
		return fmt.Errorf("fee curve needs 0 ≤ base_bps ≤ max_bps ≤ %d, got base %d, max %d", MaxFeeBps, c.BaseBps, c.MaxBps)
	}
	return nil
}

// BpsForVelocity is FeeBpsForVelocity on this curve: the base rate below
// VelocityThreshold prior transfers, then a VelocityStepBps step every
// VelocityStep more, never above the cap.
func (c FeeCurve) BpsForVelocity(prior int) int64 {
	if prior < VelocityThreshold {
		return c.BaseBps
	}
	steps := 1 + int64((prior-VelocityThreshold)/VelocityStep)
	if max := (c.MaxBps-c.BaseBps)/VelocityStepBps + 1; steps > max { // cap before multiplying
		steps = max
	}
	if bps := c.BaseBps + steps*VelocityStepBps; bps < c.MaxBps {
		return bps
	}
	return c.MaxBps
}

// CountCap is how many prior transfers a store must count at most for
// this curve: from this count on the rate is at the cap.
func (c FeeCurve) CountCap() int {
	if c.MaxBps <= c.BaseBps {
		return VelocityThreshold
	}
	steps := (c.MaxBps - c.BaseBps + VelocityStepBps - 1) / VelocityStepBps // steps to reach the cap
	return VelocityThreshold + VelocityStep*int(steps-1)
}
