package governance_test

import (
	"fmt"
	"math"
	"math/big"
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/money"
)

func opt(t testing.TB, name string) governance.LockOption {
	o, ok := governance.OptionByName(name)
	require.True(t, ok, name)
	return o
}

func TestLockOptionsAreTheWhitepaperMultipliers(t *testing.T) {
	want := map[string]string{"flexible": "0.010", "7d": "0.019", "30d": "0.082", "90d": "0.247", "180d": "0.493", "365d": "1.000"}
	require.Len(t, governance.LockOptions, len(want))
	for _, o := range governance.LockOptions {
		require.Equal(t, want[o.Name], o.Multiplier(), o.Name)
	}
	require.Equal(t, governance.TMax, opt(t, "365d").Lock)
}

// 100 AVT = 10^10 units, √ = 100000 exactly: the power at the start of
// the lock is the multiplier × 100000, half of it at mid-lock, and the
// flexible floor (1000) at and after expiry. 7d at mid-lock (950) is below
// the floor and counts as flexible.
func TestPowerAtStartMidAndExpiry(t *testing.T) {
	const units = 100 * money.UnitsPerToken
	cases := []struct {
		opt                string
		start, mid, expiry int64
	}{
		{"flexible", 1000, 1000, 1000},
		{"7d", 1900, 1000, 1000},
		{"30d", 8200, 4100, 1000},
		{"90d", 24700, 12350, 1000},
		{"180d", 49300, 24650, 1000},
		{"365d", 100000, 50000, 1000},
	}
	for _, c := range cases {
		o := opt(t, c.opt)
		require.Equal(t, c.start, governance.Power(units, o, o.Lock), "%s start", c.opt)
		require.Equal(t, c.mid, governance.Power(units, o, o.Lock/2), "%s mid", c.opt)
		require.Equal(t, c.expiry, governance.Power(units, o, 0), "%s expiry", c.opt)
		require.Equal(t, c.expiry, governance.Power(units, o, -time.Hour), "%s after expiry", c.opt)
		// More time left than the lock (clock skew) counts as the start.
		require.Equal(t, c.start, governance.Power(units, o, o.Lock+time.Hour), "%s clamp", c.opt)
	}
	// One day into a 365 d lock: ⌊100000 × 364/365⌋ = 99726.
	require.Equal(t, int64(99726), governance.Power(units, opt(t, "365d"), 364*24*time.Hour))
	// Rounding is down: 1 s left of 365 d is 0 before the floor.
	require.Equal(t, int64(1000), governance.Power(units, opt(t, "365d"), time.Second))
	require.Equal(t, int64(0), governance.Power(0, opt(t, "365d"), time.Hour))
	require.Equal(t, int64(0), governance.Power(-5, opt(t, "365d"), time.Hour))
}

func TestISqrtEdges(t *testing.T) {
	cases := map[int64]int64{
		0: 0, 1: 1, 2: 1, 3: 1, 4: 2, 15: 3, 16: 4, 17: 4,
		99_999_999: 9999, 100_000_000: 10000,
		(1 << 62) - 1:             (1 << 31) - 1,
		1 << 62:                   1 << 31,
		3037000499 * 3037000499:   3037000499,
		3037000499*3037000499 - 1: 3037000498,
		math.MaxInt64:             3037000499,
		math.MaxInt64 - 1:         3037000499,
		-1:                        0,
		math.MinInt64:             0,
		4503599761588225:          67108865, // (2^26+1)^2
		4503599761588224:          67108864,
		1000000000000000000:       1000000000,
		1000000000000000000 - 1:   999999999,
		1000000000000000000 + 1:   1000000000,
	}
	for x, want := range cases {
		require.Equal(t, want, governance.ISqrt(x), "isqrt(%d)", x)
	}
}

// ISqrt against math/big on random values across the whole range, and
// around perfect squares where float rounding bites.
func TestISqrtProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	check := func(x int64) {
		if x < 0 {
			return
		}
		r := governance.ISqrt(x)
		want := new(big.Int).Sqrt(big.NewInt(x)).Int64()
		require.Equal(t, want, r, "isqrt(%d)", x)
	}
	for i := 0; i < 200_000; i++ {
		check(rng.Int63() >> uint(rng.Intn(63)))
		s := rng.Int63n(3037000499) + 1
		check(s*s - 1)
		check(s * s)
		if s*s < math.MaxInt64 {
			check(s*s + 1)
		}
	}
}

// Splitting one developer's stake across agents multiplies its power by
// √n under the default grouping (by agent) and gains nothing by
// developer.
func TestSplitStakeDefence(t *testing.T) {
	o := opt(t, "365d")
	whole := []governance.Stake{{Voter: "a0", Developer: "dev", Units: 400 * money.UnitsPerToken, Option: o, Remaining: o.Lock}}
	var split []governance.Stake
	for i := 0; i < 4; i++ {
		split = append(split, governance.Stake{Voter: fmt.Sprintf("a%d", i), Developer: "dev", Units: 100 * money.UnitsPerToken, Option: o, Remaining: o.Lock})
	}
	sum := func(m map[string]int64) (s int64) {
		for _, v := range m {
			s += v
		}
		return s
	}
	pw, err := governance.VoterPowers(whole, governance.ByVoter)
	require.NoError(t, err)
	require.Equal(t, int64(200000), sum(pw)) // √(4×10^10)
	ps, err := governance.VoterPowers(split, governance.ByVoter)
	require.NoError(t, err)
	require.Equal(t, int64(400000), sum(ps), "by agent, four agents of 100 AVT double the power")
	pd, err := governance.VoterPowers(split, governance.ByDeveloper)
	require.NoError(t, err)
	require.Equal(t, int64(200000), sum(pd), "by developer, splitting gains nothing")
	require.Equal(t, int64(50000), pd["a2"], "apportioned by units")

	// By agent, several positions of one agent are one √ too.
	two := []governance.Stake{
		{Voter: "x", Units: 50 * money.UnitsPerToken, Option: o, Remaining: o.Lock},
		{Voter: "x", Units: 50 * money.UnitsPerToken, Option: o, Remaining: o.Lock},
	}
	px, err := governance.VoterPowers(two, governance.ByVoter)
	require.NoError(t, err)
	require.Equal(t, int64(100000), px["x"])
}

// Property: for random stakes and any split of them across agents of one
// developer, the developer's power by developer never exceeds the power of
// the same positions held by a single agent, and the grouping by agent
// never gives less than by developer.
func TestSplitStakeProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for iter := 0; iter < 2000; iter++ {
		n := 1 + rng.Intn(8)
		var one, many []governance.Stake
		for i := 0; i < n; i++ {
			o := governance.LockOptions[rng.Intn(len(governance.LockOptions))]
			rem := time.Duration(rng.Int63n(int64(o.Lock) + 1))
			units := rng.Int63n(1_000_000*money.UnitsPerToken) + 1
			one = append(one, governance.Stake{Voter: "solo", Developer: "dev", Units: units, Option: o, Remaining: rem})
			many = append(many, governance.Stake{Voter: fmt.Sprintf("a%d", rng.Intn(n)), Developer: "dev", Units: units, Option: o, Remaining: rem})
		}
		solo, err := governance.VoterPowers(one, governance.ByVoter)
		require.NoError(t, err)
		byDev, err := governance.VoterPowers(many, governance.ByDeveloper)
		require.NoError(t, err)
		byAgent, err := governance.VoterPowers(many, governance.ByVoter)
		require.NoError(t, err)
		var sd, sa int64
		for _, v := range byDev {
			sd += v
		}
		for _, v := range byAgent {
			sa += v
		}
		// Rounding down per position can differ by at most one unit per
		// position (a floor of a share); splitting never gains more.
		require.LessOrEqual(t, sd, solo["solo"]+int64(n), "iter %d", iter)
		require.GreaterOrEqual(t, sa+int64(n), sd, "iter %d", iter)
	}
}

func TestVoterPowersOverflowIsAnError(t *testing.T) {
	o := opt(t, "flexible")
	_, err := governance.VoterPowers([]governance.Stake{
		{Voter: "a", Units: math.MaxInt64, Option: o},
		{Voter: "a", Units: 1, Option: o},
	}, governance.ByVoter)
	require.Error(t, err)
	p, err := governance.VoterPowers([]governance.Stake{{Voter: "a", Units: math.MaxInt64, Option: opt(t, "365d"), Remaining: governance.TMax}}, governance.ByVoter)
	require.NoError(t, err)
	require.Equal(t, int64(3037000499), p["a"])
}

func TestDelegationResolution(t *testing.T) {
	snap := []governance.SnapshotEntry{
		{Voter: "a", Power: 10, Delegate: "b"},  // follows b
		{Voter: "b", Power: 20, Delegate: "c"},  // votes directly: its own vote
		{Voter: "c", Power: 40, Delegate: "b"},  // cycle with b; c votes directly
		{Voter: "d", Power: 80, Delegate: "a"},  // a did not vote directly: one hop, not followed to b
		{Voter: "e", Power: 160, Delegate: "e"}, // self: ignored
		{Voter: "f", Power: 320, Delegate: "b"}, // overrides with a direct vote
	}
	direct := map[string]governance.Choice{"b": governance.Yes, "c": governance.No, "f": governance.Abstain}
	r, err := governance.Tally(snap, direct, governance.Rules{QuorumBps: 1, ThresholdBps: 5000})
	require.NoError(t, err)
	require.Equal(t, int64(630), r.Electorate)
	require.Equal(t, int64(30), r.Yes)
	require.Equal(t, int64(40), r.No)
	require.Equal(t, int64(320), r.Abstain)
	require.Equal(t, 3, r.Direct)
	require.Equal(t, 1, r.Delegated)
	require.False(t, r.Passed)
	require.Equal(t, int64(10+40+320), governance.Received(snap, "b"))

	// Revoked (no delegate) and neither voting: not counted.
	r, err = governance.Tally([]governance.SnapshotEntry{{Voter: "a", Power: 10}}, map[string]governance.Choice{"b": governance.Yes}, governance.Rules{QuorumBps: 1, ThresholdBps: 5000})
	require.NoError(t, err)
	require.Zero(t, r.Turnout)
	require.False(t, r.QuorumMet)
}

// Quorum and threshold exactly at their edges pass; one unit below fails.
func TestTallyEdges(t *testing.T) {
	snap := func(yes, no, abstain, silent int64) ([]governance.SnapshotEntry, map[string]governance.Choice) {
		s := []governance.SnapshotEntry{{Voter: "y", Power: yes}, {Voter: "n", Power: no}, {Voter: "a", Power: abstain}, {Voter: "s", Power: silent}}
		return s, map[string]governance.Choice{"y": governance.Yes, "n": governance.No, "a": governance.Abstain}
	}
	cases := []struct {
		name                  string
		yes, no, abst, silent int64
		rules                 governance.Rules
		quorum, passed        bool
	}{
		{"quorum exactly met", 40, 0, 0, 60, governance.Rules{QuorumBps: 4000, ThresholdBps: 5000}, true, true},
		{"quorum one short", 39, 0, 0, 61, governance.Rules{QuorumBps: 4000, ThresholdBps: 5000}, false, false},
		{"abstain counts for quorum", 10, 0, 30, 60, governance.Rules{QuorumBps: 4000, ThresholdBps: 5000}, true, true},
		{"threshold exactly met", 667, 333, 0, 0, governance.Rules{QuorumBps: 100, ThresholdBps: 6670}, true, true},
		{"threshold one short", 666, 334, 0, 0, governance.Rules{QuorumBps: 100, ThresholdBps: 6670}, true, false},
		{"tie fails at 50 %", 50, 50, 0, 0, governance.Rules{QuorumBps: 100, ThresholdBps: 5000}, true, false},
		{"one more yes passes at 50 %", 51, 50, 0, 0, governance.Rules{QuorumBps: 100, ThresholdBps: 5000}, true, true},
		{"only abstentions fail", 0, 0, 100, 0, governance.Rules{QuorumBps: 100, ThresholdBps: 5000}, true, false},
		{"unanimity", 100, 0, 5, 0, governance.Rules{QuorumBps: 10000, ThresholdBps: 10000}, true, true},
		{"unanimity one no", 100, 1, 0, 0, governance.Rules{QuorumBps: 10000, ThresholdBps: 10000}, true, false},
		{"empty electorate", 0, 0, 0, 0, governance.Rules{QuorumBps: 1, ThresholdBps: 5000}, false, false},
		{"huge powers exact", math.MaxInt64 / 4, math.MaxInt64 / 4, 0, math.MaxInt64 / 2, governance.Rules{QuorumBps: 5000, ThresholdBps: 5000}, false, false},
	}
	for _, c := range cases {
		s, d := snap(c.yes, c.no, c.abst, c.silent)
		r, err := governance.Tally(s, d, c.rules)
		require.NoError(t, err, c.name)
		require.Equal(t, c.quorum, r.QuorumMet, c.name)
		require.Equal(t, c.passed, r.Passed, c.name)
		require.Equal(t, r.Yes+r.No+r.Abstain, r.Turnout, c.name)
	}
}

// Property: a tally counts every snapshot power at most once, turnout
// never exceeds the electorate, and the result does not depend on the
// order of the snapshot.
func TestTallyProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	choices := []governance.Choice{governance.Yes, governance.No, governance.Abstain}
	for iter := 0; iter < 500; iter++ {
		n := 1 + rng.Intn(50)
		snap := make([]governance.SnapshotEntry, n)
		direct := map[string]governance.Choice{}
		for i := range snap {
			snap[i] = governance.SnapshotEntry{Voter: fmt.Sprint(i), Power: rng.Int63n(1e9)}
			if rng.Intn(3) == 0 {
				snap[i].Delegate = fmt.Sprint(rng.Intn(n + 3))
			}
			if rng.Intn(2) == 0 {
				direct[fmt.Sprint(i)] = choices[rng.Intn(3)]
			}
		}
		rules := governance.Rules{QuorumBps: 1 + rng.Int63n(10000), ThresholdBps: 5000 + rng.Int63n(5001)}
		r1, err := governance.Tally(snap, direct, rules)
		require.NoError(t, err)
		require.LessOrEqual(t, r1.Turnout, r1.Electorate)
		require.LessOrEqual(t, r1.Direct+r1.Delegated, n)
		rng.Shuffle(n, func(i, j int) { snap[i], snap[j] = snap[j], snap[i] })
		r2, err := governance.Tally(snap, direct, rules)
		require.NoError(t, err)
		require.Equal(t, r1, r2)
		// A voter who votes directly overrides its delegation.
		for _, e := range snap {
			if c, ok := direct[e.Voter]; ok {
				got, counted, via := governance.Resolve(e, direct)
				require.True(t, counted)
				require.False(t, via)
				require.Equal(t, c, got)
			}
		}
	}
}

func BenchmarkTally100kWithDelegation(b *testing.B) {
	const n = 100_000
	rng := rand.New(rand.NewSource(1))
	o := opt(b, "180d")
	stakes := make([]governance.Stake, n)
	for i := range stakes {
		stakes[i] = governance.Stake{Voter: fmt.Sprintf("did:theprotocol:%08d", i), Units: 10*money.UnitsPerToken + rng.Int63n(1e12), Option: o, Remaining: time.Duration(rng.Int63n(int64(o.Lock)))}
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		powers, err := governance.VoterPowers(stakes, governance.ByVoter)
		if err != nil {
			b.Fatal(err)
		}
		snap := make([]governance.SnapshotEntry, 0, n)
		direct := make(map[string]governance.Choice, n)
		for i, s := range stakes {
			e := governance.SnapshotEntry{Voter: s.Voter, Power: powers[s.Voter]}
			if i%3 == 0 { // a third delegate to a voter that votes
				j := i + 1
				if j == n {
					j = i - 1
				}
				e.Delegate = stakes[j].Voter
			} else {
				direct[s.Voter] = governance.Choice([]string{"yes", "no", "abstain"}[i%3])
			}
			snap = append(snap, e)
		}
		r, err := governance.Tally(snap, direct, governance.Rules{QuorumBps: 3340, ThresholdBps: 5000})
		if err != nil {
			b.Fatal(err)
		}
		if r.Direct+r.Delegated != n {
			b.Fatalf("counted %d of %d", r.Direct+r.Delegated, n)
		}
	}
}
