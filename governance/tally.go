package governance

import (
	"fmt"
	"math/bits"

	"github.com/theprotocol-dev/theprotocol/money"
)

// Choice is a vote.
type Choice string

// The three choices.
const (
	Yes     Choice = "yes"
	No      Choice = "no"
	Abstain Choice = "abstain"
)

// ParseChoice accepts yes, no or abstain.
func ParseChoice(s string) (Choice, error) {
	switch c := Choice(s); c {
	case Yes, No, Abstain:
		return c, nil
	}
	return "", fmt.Errorf("vote must be yes, no or abstain, not %q", s)
}

// SnapshotEntry is one voter's row of a proposal's snapshot, taken when the
// proposal opens: its own power then, and whom it had delegated to then
// ("" for nobody). Later stake or delegation changes do not move it, so
// nobody can buy or gather power mid-vote.
type SnapshotEntry struct {
	Voter    string
	Power    int64
	Delegate string
}

// Rules are a proposal's quorum and threshold, in basis points.
type Rules struct {
	QuorumBps    int64 // of the electorate's power that must take part (yes + no + abstain)
	ThresholdBps int64 // of yes + no that must be yes
}

// Result is a tally.
type Result struct {
	Electorate int64 // Σ snapshot power
	Yes        int64
	No         int64
	Abstain    int64
	Turnout    int64 // yes + no + abstain
	QuorumMet  bool
	Passed     bool
	Direct     int // snapshot voters counted by their own vote
	Delegated  int // snapshot voters counted through their delegate's vote
}

// Resolve says which vote a snapshot entry's power follows:
//
//   - its own direct vote, if it cast one (a direct vote overrides its
//     delegation for this proposal);
//   - else its delegate's direct vote, if the delegate cast one;
//   - else none.
//
// One hop only: a delegate's own delegation never carries the power it
// received, and only direct votes are followed, so cycles (A → B → A)
// cannot loop or double count; self-delegation is ignored.
func Resolve(e SnapshotEntry, direct map[string]Choice) (Choice, bool, bool) {
	if c, ok := direct[e.Voter]; ok {
		return c, true, false
	}
	if e.Delegate != "" && e.Delegate != e.Voter {
		if c, ok := direct[e.Delegate]; ok {
			return c, true, true
		}
	}
	return "", false, false
}

// Tally counts direct votes over a snapshot. Votes of voters not in the
// snapshot carry no power of their own (they may still carry delegated
// power). Each snapshot entry is counted at most once.
//
// Edges, all compared exactly in 128 bits:
//   - quorum is met when turnout × 10000 ≥ QuorumBps × electorate (exactly
//     at the quorum counts as met);
//   - the proposal passes when quorum is met, yes > no, and
//     yes × 10000 ≥ ThresholdBps × (yes + no) (exactly at the threshold
//     passes; abstentions count for quorum only; a tie never passes, even
//     at a 50 % threshold);
//   - an empty electorate never meets quorum.
func Tally(snapshot []SnapshotEntry, direct map[string]Choice, r Rules) (Result, error) {
	var res Result
	for _, e := range snapshot {
		if e.Power < 0 {
			return Result{}, fmt.Errorf("governance: negative power for %s", e.Voter)
		}
		var err error
		if res.Electorate, err = money.Add(res.Electorate, e.Power); err != nil {
			return Result{}, err
		}
		c, ok, viaDelegate := Resolve(e, direct)
		if !ok || e.Power == 0 {
			continue
		}
		if viaDelegate {
			res.Delegated++
		} else {
			res.Direct++
		}
		switch c {
		case Yes:
			res.Yes, err = money.Add(res.Yes, e.Power)
		case No:
			res.No, err = money.Add(res.No, e.Power)
		case Abstain:
			res.Abstain, err = money.Add(res.Abstain, e.Power)
		default:
			return Result{}, fmt.Errorf("governance: unknown choice %q", c)
		}
		if err != nil {
			return Result{}, err
		}
	}
	// Each of yes, no, abstain is a part of the electorate, which fits.
	res.Turnout = res.Yes + res.No + res.Abstain
	res.QuorumMet = res.Electorate > 0 && geq(res.Turnout, 10_000, r.QuorumBps, res.Electorate)
	res.Passed = res.QuorumMet && res.Yes > res.No &&
		geq(res.Yes, 10_000, r.ThresholdBps, res.Yes+res.No)
	return res, nil
}

// geq reports a×b ≥ c×d for non-negative operands, exactly.
func geq(a, b, c, d int64) bool {
	h1, l1 := bits.Mul64(uint64(a), uint64(b))
	h2, l2 := bits.Mul64(uint64(c), uint64(d))
	return h1 > h2 || (h1 == h2 && l1 >= l2)
}

// Received is the power delegated to delegate in a snapshot (one hop).
func Received(snapshot []SnapshotEntry, delegate string) int64 {
	var sum int64
	for _, e := range snapshot {
		if e.Delegate == delegate && e.Voter != delegate {
			sum += e.Power // each part of the electorate, which fits
		}
	}
	return sum
}
