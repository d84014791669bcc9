package xferstate

import (
	"fmt"
	"math"
)

// A participant credits its receivers from transit:<source>, so that
// account goes negative by what the source has sent here, net of what
// this registry sent back (its own commit decisions post to the same
// account). That net amount is the registry's exposure to the peer: value
// it created on the peer's word. The rules below cap it per peer.

// ReasonExposureCap starts the reason of a prepare refused by the cap; the
// coordinator's abort reason then names it ("rejected by the target
// registry: exposure cap …").
const ReasonExposureCap = "exposure cap"

// Caps are the exposure caps of a participant, in base units: Default for
// every peer, PerPeer overriding it for some. A cap is never negative; 0
// refuses any net credit from that peer.
type Caps struct {
	Default int64
	PerPeer map[string]int64
}

// For returns the cap that applies to peer.
func (c Caps) For(peer string) int64 {
	if v, ok := c.PerPeer[peer]; ok {
		return v
	}
	return c.Default
}

// Validate reports a negative cap.
func (c Caps) Validate() error {
	if c.Default < 0 {
		return fmt.Errorf("exposure cap %d is negative", c.Default)
	}
	for p, v := range c.PerPeer {
		if v < 0 {
			return fmt.Errorf("exposure cap %d of peer %q is negative", v, p)
		}
	}
	return nil
}

// Exposure is the exposure a transit balance stands for (−balance; a
// positive balance, more sent than received, is a negative exposure). It
// saturates instead of overflowing.
func Exposure(transitUnits int64) int64 {
	if transitUnits == math.MinInt64 {
		return math.MaxInt64
	}
	return -transitUnits
}

// Headroom is how much more may still be credited through a transit
// account holding transitUnits before the exposure passes limit (a cap,
// ≥ 0). It is negative when the exposure is already beyond the cap (the
// cap was lowered), and saturates at the int64 bounds instead of
// overflowing.
func Headroom(transitUnits, limit int64) int64 {
	if limit < 0 {
		limit = 0
	}
	if transitUnits > math.MaxInt64-limit {
		return math.MaxInt64
	}
	return transitUnits + limit
}

// CreditAllowed reports whether a credit that leaves the transit account
// at after keeps the exposure within limit: the commit-time rule.
func CreditAllowed(after, limit int64) bool { return Headroom(after, limit) >= 0 }

// Reserve is the prepare-time rule. Open prepares reserve their amount:
// of amounts (new prepares, in order), each is admitted when it still fits
// in headroom once reserved (the open prepares' total, ≥ 0) and the
// amounts admitted before it are counted. Amounts that are not positive
// are never admitted. It returns which were admitted.
func Reserve(headroom, reserved int64, amounts []int64) []bool {
	out := make([]bool, len(amounts))
	free := subSaturating(headroom, max(reserved, 0))
	for i, a := range amounts {
		if a > 0 && a <= free {
			out[i] = true
			free -= a // a ≤ free: no overflow
		}
	}
	return out
}

// RefusalReason is the reason a prepare refused by the cap carries.
func RefusalReason(peer string, amount, exposure, reserved, limit int64) string {
	return fmt.Sprintf("%s: crediting %d units from %s would take its exposure (%d, %d more prepared) beyond the cap of %d",
		ReasonExposureCap, amount, peer, exposure, reserved, limit)
}

func subSaturating(a, b int64) int64 {
	// b ≥ 0 here: only the lower bound can be crossed.
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}
