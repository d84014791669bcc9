package governance

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// Limits bound what a proposal may ask for. The node's configuration sets
// them (a test stack shortens the windows); DefaultLimits are the
// production values.
type Limits struct {
	MinWindow    time.Duration
	MaxWindow    time.Duration
	MinQuorumBps int64
	MinThreshold int64 // bps
	MinPower     int64 // a proposer's own snapshot power at least this (anti-spam)
	VetoWindow   time.Duration
	// CollectWindow is how long after a federation proposal's window the
	// originating registry keeps asking unavailable peers for their
	// tallies before it tallies without them (0: DefaultCollectWindow).
	CollectWindow time.Duration
}

// DefaultCollectWindow is the collection deadline when none is set.
const DefaultCollectWindow = 10 * time.Minute

// Collect is l.CollectWindow, or DefaultCollectWindow when unset.
func (l Limits) Collect() time.Duration {
	if l.CollectWindow <= 0 {
		return DefaultCollectWindow
	}
	return l.CollectWindow
}

// DefaultLimits: windows of one hour to 30 days; quorum at least 1 %;
// threshold at least a simple majority; a proposer needs the power of
// 100 AVT staked flexible (⌊√10^10⌋ × 0.01 = 1000); executable changes
// wait 48 h after passing.
var DefaultLimits = Limits{
	MinWindow:    time.Hour,
	MaxWindow:    30 * 24 * time.Hour,
	MinQuorumBps: 100,
	MinThreshold: 5000,
	MinPower:     1000,
	VetoWindow:   48 * time.Hour,
}

// Validate checks the limits themselves (at node start).
func (l Limits) Validate() error {
	switch {
	case l.MinWindow < time.Second || l.MaxWindow < l.MinWindow || l.MaxWindow > 365*24*time.Hour:
		return fmt.Errorf("governance: windows need 1s ≤ min ≤ max ≤ 365d, got %s..%s", l.MinWindow, l.MaxWindow)
	case l.MinQuorumBps < 1 || l.MinQuorumBps > 10_000:
		return fmt.Errorf("governance: minimum quorum %d bps outside 1..10000", l.MinQuorumBps)
	case l.MinThreshold < 5000 || l.MinThreshold > 10_000:
		return fmt.Errorf("governance: minimum threshold %d bps outside 5000..10000", l.MinThreshold)
	case l.MinPower < 0:
		return fmt.Errorf("governance: negative minimum power")
	case l.VetoWindow < 0 || l.VetoWindow > 30*24*time.Hour:
		return fmt.Errorf("governance: veto window %s outside 0..30d", l.VetoWindow)
	case l.CollectWindow < 0 || l.CollectWindow > 7*24*time.Hour:
		return fmt.Errorf("governance: federation collection window %s outside 0..7d", l.CollectWindow)
	}
	return nil
}

// ChangeKind names an executable change.
type ChangeKind string

// The typed set of executable changes.
const (
	// ChangeFeeCurve sets the intra-registry fee curve's base and cap.
	ChangeFeeCurve ChangeKind = "fee_curve"
	// ChangeStakingPremium sets one staking tier's APY premium (added to
	// the curve's dynamic base rate).
	ChangeStakingPremium ChangeKind = "staking_premium"
)

// MaxStakingPremiumBps bounds a governed tier premium (20 % a year).
const MaxStakingPremiumBps = 2000

// StakingPremium is a tier's governed APY premium.
type StakingPremium struct {
	Tier       string `json:"tier"`
	PremiumBps int64  `json:"premium_bps"`
}

// Change is an executable change a passed proposal enacts.
type Change struct {
	Kind           ChangeKind       `json:"kind"`
	FeeCurve       *ledger.FeeCurve `json:"fee_curve,omitempty"`
	StakingPremium *StakingPremium  `json:"staking_premium,omitempty"`
}

// Validate accepts a known kind with exactly its own payload, valid.
func (c Change) Validate() error {
	switch c.Kind {
	case ChangeFeeCurve:
		if c.FeeCurve == nil || c.StakingPremium != nil {
			return fmt.Errorf("change fee_curve needs fee_curve {base_bps, max_bps} and nothing else")
		}
		return c.FeeCurve.Validate()
	case ChangeStakingPremium:
		p := c.StakingPremium
		if p == nil || c.FeeCurve != nil {
			return fmt.Errorf("change staking_premium needs staking_premium {tier, premium_bps} and nothing else")
		}
		if _, err := staking.TierByID(p.Tier); err != nil {
			return err
		}
		if p.PremiumBps < 0 || p.PremiumBps > MaxStakingPremiumBps {
			return fmt.Errorf("premium_bps must be 0..%d", MaxStakingPremiumBps)
		}
		return nil
	}
	return fmt.Errorf("unknown change kind %q (known: fee_curve, staking_premium)", c.Kind)
}

// Encode is the change's canonical JSON, as stored.
func (c Change) Encode() []byte {
	b, _ := json.Marshal(c) // plain structs: cannot fail
	return b
}

// DecodeChange reads a stored change back and validates it.
func DecodeChange(b []byte) (Change, error) {
	var c Change
	if err := json.Unmarshal(b, &c); err != nil {
		return Change{}, fmt.Errorf("governance: stored change: %w", err)
	}
	return c, c.Validate()
}

// Draft is a proposal as submitted.
type Draft struct {
	Title        string
	Body         string
	Window       time.Duration
	QuorumBps    int64
	ThresholdBps int64
	Change       *Change
}

// Text limits.
const (
	MaxTitleBytes = 200
	MaxBodyBytes  = 20_000
)

// Validate checks a draft against the limits; the message says what is
// wrong, for a 400.
func (d Draft) Validate(l Limits) error {
	switch {
	case strings.TrimSpace(d.Title) == "" || len(d.Title) > MaxTitleBytes || !utf8.ValidString(d.Title):
		return fmt.Errorf("title must be 1..%d bytes of UTF-8", MaxTitleBytes)
	case len(d.Body) > MaxBodyBytes || !utf8.ValidString(d.Body):
		return fmt.Errorf("body must be at most %d bytes of UTF-8", MaxBodyBytes)
	case d.Window < l.MinWindow || d.Window > l.MaxWindow:
		return fmt.Errorf("window_seconds must be between %d and %d", int64(l.MinWindow/time.Second), int64(l.MaxWindow/time.Second))
	case d.Window%time.Second != 0:
		return fmt.Errorf("window_seconds must be whole seconds")
	case d.QuorumBps < l.MinQuorumBps || d.QuorumBps > 10_000:
		return fmt.Errorf("quorum_bps must be between %d and 10000", l.MinQuorumBps)
	case d.ThresholdBps < l.MinThreshold || d.ThresholdBps > 10_000:
		return fmt.Errorf("threshold_bps must be between %d and 10000", l.MinThreshold)
	}
	if d.Change != nil {
		if err := d.Change.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Proposal states.
const (
	StateOpen     = "open"     // voting
	StatePassed   = "passed"   // tallied, passed; an executable change waits the veto window
	StateRejected = "rejected" // tallied, did not pass
	StateEnacted  = "enacted"  // its change applied
	StateVetoed   = "vetoed"   // passed, stopped by the operator; never enacted
	// StateClosed is a federation proposal's copy on a peer registry once
	// its local tally was taken: the result is decided at the originating
	// registry.
	StateClosed = "closed"
)

// Status is what the tally workflow needs to know of a proposal: its
// state and the instants it waits for. Workflows carry the ID and read
// this through an activity, never the proposal itself.
type Status struct {
	ProposalID string
	State      string
	ClosesAt   time.Time
	EnactAfter *time.Time // set once a proposal with a change has passed
	HasChange  bool
}

// Final reports whether nothing more will happen to the proposal: rejected,
// enacted, vetoed, or passed without a change to enact.
func (s Status) Final() bool {
	switch s.State {
	case StateRejected, StateEnacted, StateVetoed, StateClosed:
		return true
	case StatePassed:
		return !s.HasChange
	}
	return false
}
