package governance

import (
	"fmt"
	"time"

	"github.com/theprotocol-dev/theprotocol/money"
)

// Stake is one open staking position as governance sees it.
type Stake struct {
	Voter     string        // the agent that owns the position and votes with it
	Developer string        // who controls the agent; used by ByDeveloper ("" counts the agent alone)
	Units     int64         // principal, base units
	Option    LockOption    // from the position's tier
	Remaining time.Duration // unlock_at − now; ignored for flexible
}

// Grouping says over which stake the square root is taken.
type Grouping int

const (
	// ByVoter takes √ of all the stake of one agent, so an agent gains
	// nothing by splitting its stake into many positions. The default.
	ByVoter Grouping = iota
	// ByDeveloper takes √ of all the stake of every agent one developer
	// controls, so a developer gains nothing by spreading stake across many
	// agents either. Off by default: it needs the agent → developer map and
	// weakens independent agents of one developer to one voice.
	ByDeveloper
)

// VoterPowers returns each voter's power (voters with power 0 left out).
//
// For every group (voter or developer) with total stake X, root = ⌊√X⌋ is
// apportioned to its positions in proportion to their units,
// share = ⌊root × units / X⌋, and each share is weighted by its own
// option and remaining lock (WeightRoot). Every step rounds down, so the
// shares of a group never add to more than ⌊√X⌋ and the group's power never
// exceeds what the same stake would have in one position per option: that
// is the split-stake defence. A group's X above MaxInt64 is an error (it
// cannot happen with a supply that fits int64).
func VoterPowers(stakes []Stake, g Grouping) (map[string]int64, error) {
	key := func(s Stake) string {
		if g == ByDeveloper && s.Developer != "" {
			return "d\x00" + s.Developer
		}
		return "v\x00" + s.Voter
	}
	totals := make(map[string]int64)
	for _, s := range stakes {
		if s.Units < 0 {
			return nil, fmt.Errorf("governance: negative stake %d for %s", s.Units, s.Voter)
		}
		k := key(s)
		t, err := money.Add(totals[k], s.Units)
		if err != nil {
			return nil, fmt.Errorf("governance: stake of %s: %w", k[2:], err)
		}
		totals[k] = t
	}
	roots := make(map[string]int64, len(totals))
	for k, t := range totals {
		roots[k] = ISqrt(t)
	}
	out := make(map[string]int64)
	for _, s := range stakes {
		if s.Units == 0 {
			continue
		}
		k := key(s)
		share, err := money.MulDivDown(roots[k], s.Units, totals[k])
		if err != nil {
			return nil, err
		}
		p := WeightRoot(share, s.Option, s.Remaining)
		if p == 0 {
			continue
		}
		v, err := money.Add(out[s.Voter], p)
		if err != nil {
			return nil, err
		}
		out[s.Voter] = v
	}
	return out, nil
}
