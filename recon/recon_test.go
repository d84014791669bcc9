package recon_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/recon"
)

const did = "did:theprotocol:0190a1b2-0000-7000-8000-000000000001"
const did2 = "did:theprotocol:0190a1b2-0000-7000-8000-000000000002"

func TestClass(t *testing.T) {
	t.Parallel()
	for account, want := range map[string]string{
		"issuance": recon.ClassIssuance, "treasury": recon.ClassSystem, "fee_collector": recon.ClassSystem,
		did: recon.ClassAgent, "dev:acme": recon.ClassDeveloper, "transit:alpha-op1": recon.ClassTransit,
		"xframe:beta": recon.ClassCrossFrame, "issuance2": recon.ClassSystem,
	} {
		require.Equal(t, want, recon.Class(account), account)
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	s, err := recon.Summarize([]recon.Balance{
		{did, "liquid", 70}, {"treasury", "liquid", 900}, {"issuance", "liquid", -1000},
		{did2, "liquid", 30}, {did2, "staked", 5}, {"dev:acme", "liquid", 0}, {"fee_collector", "liquid", 0},
	})
	require.NoError(t, err)
	require.Equal(t, []recon.Sum{
		{"liquid", "agent", 100}, {"liquid", "issuance", -1000}, {"liquid", "system", 900}, {"staked", "agent", 5},
	}, s.Sums)
	require.Equal(t, int64(5), s.Accounts, "zero balances are not counted")
	require.Len(t, s.Digest, 64)

	// The digest ignores zero rows but sees every other value.
	again, err := recon.Summarize([]recon.Balance{
		{"issuance", "liquid", -1000}, {did2, "staked", 5}, {did, "liquid", 70}, {"treasury", "liquid", 900}, {did2, "liquid", 30},
	})
	require.NoError(t, err)
	require.Equal(t, s, again)
	moved, err := recon.Summarize([]recon.Balance{
		{"issuance", "liquid", -1000}, {did2, "staked", 5}, {did, "liquid", 69}, {"treasury", "liquid", 900}, {did2, "liquid", 31},
	})
	require.NoError(t, err)
	require.Equal(t, s.Sums, moved.Sums, "money moved inside a class keeps the sums")
	require.NotEqual(t, s.Digest, moved.Digest, "but not the digest")

	_, err = recon.Summarize([]recon.Balance{{did, "liquid", 1}, {did, "liquid", 2}})
	require.ErrorContains(t, err, "out of order")
	_, err = recon.Summarize([]recon.Balance{{did, "liquid", math.MaxInt64}, {did2, "liquid", 1}})
	require.ErrorContains(t, err, "overflow")

	sz := recon.NewSummarizer()
	require.NoError(t, sz.Add(recon.Balance{"b", "liquid", 1}))
	require.ErrorContains(t, sz.Add(recon.Balance{"a", "liquid", 1}), "out of order", "the streaming form refuses unsorted input")
}

func TestCompare(t *testing.T) {
	t.Parallel()
	sum := func(rows ...recon.Balance) recon.Summary {
		s, err := recon.Summarize(rows)
		require.NoError(t, err)
		return s
	}
	base := []recon.Balance{{did, "liquid", 100}, {"dev:acme", "liquid", 50}, {"issuance", "liquid", -200}, {"treasury", "liquid", 50}}
	for _, tc := range []struct {
		name      string
		projected []recon.Balance
		want      []recon.Difference
	}{
		{"identical", base, nil},
		{"a transfer from the developer to the agent is missing",
			[]recon.Balance{{did, "liquid", 60}, {"dev:acme", "liquid", 90}, {"issuance", "liquid", -200}, {"treasury", "liquid", 50}},
			[]recon.Difference{{Term: "digest"}, {Term: "liquid/agent", Expected: 100, Projected: 60, Delta: -40}, {Term: "liquid/developer", Expected: 50, Projected: 90, Delta: 40}}},
		{"a forged mint", append([]recon.Balance{{"dev:zz", "liquid", 7}}, base[0], base[1], recon.Balance{"issuance", "liquid", -207}, base[3]),
			[]recon.Difference{{Term: "accounts", Expected: 4, Projected: 5, Delta: 1}, {Term: "digest"},
				{Term: "liquid/developer", Expected: 50, Projected: 57, Delta: 7}, {Term: "liquid/issuance", Expected: -200, Projected: -207, Delta: -7}}},
		{"a class the checkpoint does not have", append([]recon.Balance{{"transit:beta", "liquid", 5}}, base[0], base[1], base[2], recon.Balance{"treasury", "liquid", 45}),
			[]recon.Difference{{Term: "accounts", Expected: 4, Projected: 5, Delta: 1}, {Term: "digest"},
				{Term: "liquid/system", Expected: 50, Projected: 45, Delta: -5}, {Term: "liquid/transit", Expected: 0, Projected: 5, Delta: 5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := recon.Compare(sum(base...), sum(tc.projected...))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	m, err := recon.MoneyDelta([]recon.Difference{{Term: "liquid/agent", Delta: -40}, {Term: "liquid/developer", Delta: 40}, {Term: "accounts", Delta: 3}})
	require.NoError(t, err)
	require.Equal(t, int64(80), m)
	_, err = recon.MoneyDelta([]recon.Difference{{Term: "liquid/agent", Delta: math.MinInt64}})
	require.Error(t, err)
}

// Property: whatever the balances, a summary compares equal to itself and
// to any permutation of its rows; and changing one non-zero balance by d
// yields exactly one money difference of d (plus the digest), whose term is
// that balance's bucket and class.
func TestCompareProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(17, 4))
	accounts := []string{"issuance", "treasury", "fee_collector", "dev:a", "dev:b", "transit:x", "xframe:beta", did, did2}
	buckets := []string{"liquid", "staked", "locked_bond"}
	for iter := 0; iter < 500; iter++ {
		var rows []recon.Balance
		seen := map[[2]string]bool{}
		for range 1 + rng.IntN(20) {
			k := [2]string{accounts[rng.IntN(len(accounts))], buckets[rng.IntN(len(buckets))]}
			if seen[k] {
				continue
			}
			seen[k] = true
			rows = append(rows, recon.Balance{k[0], k[1], rng.Int64N(2_000_000) - 1_000_000})
		}
		a, err := recon.Summarize(rows)
		require.NoError(t, err)
		shuffled := append([]recon.Balance(nil), rows...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		b, err := recon.Summarize(shuffled)
		require.NoError(t, err)
		ds, err := recon.Compare(a, b)
		require.NoError(t, err)
		require.Empty(t, ds)

		i := rng.IntN(len(rows))
		if rows[i].Units == 0 {
			continue
		}
		d := 1 + rng.Int64N(1000)
		changed := append([]recon.Balance(nil), rows...)
		changed[i].Units += d
		if changed[i].Units == 0 {
			continue // the row vanishes: also an accounts difference
		}
		c, err := recon.Summarize(changed)
		require.NoError(t, err)
		ds, err = recon.Compare(a, c)
		require.NoError(t, err)
		require.Len(t, ds, 2, "%v", ds)
		require.Equal(t, recon.TermDigest, ds[0].Term)
		require.Equal(t, rows[i].Bucket+"/"+recon.Class(rows[i].Account), ds[1].Term)
		require.Equal(t, d, ds[1].Delta)
	}
}

func TestNet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		transit []recon.Transit
		legs    []recon.Leg
		want    []recon.PairNetting
	}{
		{"settled both ways", []recon.Transit{{"a", "b", 0}, {"b", "a", 0}},
			[]recon.Leg{{Source: "a", Target: "b", Debited: true, DebitUnits: 10, Credited: true, CreditUnits: 10}},
			[]recon.PairNetting{{A: "a", B: "b"}}},
		{"one in flight", []recon.Transit{{"a", "b", 30}, {"b", "a", -10}},
			[]recon.Leg{{Source: "a", Target: "b", Debited: true, DebitUnits: 10, Credited: true, CreditUnits: 10}, {Source: "a", Target: "b", Debited: true, DebitUnits: 20}},
			[]recon.PairNetting{{A: "a", B: "b", TransitUnits: 20, InFlightUnits: 20}}},
		{"both directions in flight", []recon.Transit{{"b", "a", 5}, {"a", "b", 7}},
			[]recon.Leg{{Source: "a", Target: "b", Debited: true, DebitUnits: 7}, {Source: "b", Target: "a", Debited: true, DebitUnits: 5}},
			[]recon.PairNetting{{A: "a", B: "b", TransitUnits: 12, InFlightUnits: 12}}},
		{"a credit with no decision", []recon.Transit{{"b", "a", -40}},
			[]recon.Leg{{Source: "a", Target: "b", Credited: true, CreditUnits: 40}},
			[]recon.PairNetting{{A: "a", B: "b", TransitUnits: -40, Delta: -40}}},
		{"credited more than decided", []recon.Transit{{"a", "b", 10}, {"b", "a", -15}},
			[]recon.Leg{{Source: "a", Target: "b", Debited: true, DebitUnits: 10, Credited: true, CreditUnits: 15}},
			[]recon.PairNetting{{A: "a", B: "b", TransitUnits: -5, Delta: -5}}},
		{"pairs kept apart", []recon.Transit{{"c", "a", -3}, {"a", "b", 2}},
			[]recon.Leg{{Source: "a", Target: "b", Debited: true, DebitUnits: 2}},
			[]recon.PairNetting{{A: "a", B: "b", TransitUnits: 2, InFlightUnits: 2}, {A: "a", B: "c", TransitUnits: -3, Delta: -3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := recon.Net(tc.transit, tc.legs)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	_, err := recon.Net([]recon.Transit{{"a", "b", math.MaxInt64}, {"b", "a", 1}}, nil)
	require.Error(t, err)
	require.Equal(t, "beta", recon.TransitPeer("transit:beta"))
	require.Equal(t, "", recon.TransitPeer("treasury"))
}

// Property: for any set of honest transfers between registries (each
// committed, some credited with the amount decided), the transit balances
// they leave net to zero on every pair; one credit without a decision
// shows as exactly its amount, negative, on its pair and nowhere else.
func TestNetProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 9))
	regs := []string{"r1", "r2", "r3", "r4"}
	for iter := 0; iter < 300; iter++ {
		balances := map[[2]string]int64{} // (registry, peer) → transit balance
		var legs []recon.Leg
		for range rng.IntN(30) {
			s := regs[rng.IntN(len(regs))]
			d := regs[rng.IntN(len(regs))]
			if s == d {
				continue
			}
			amt := 1 + rng.Int64N(1_000_000)
			l := recon.Leg{Source: s, Target: d, Debited: true, DebitUnits: amt}
			balances[[2]string{s, d}] += amt
			if rng.IntN(3) > 0 {
				l.Credited, l.CreditUnits = true, amt
				balances[[2]string{d, s}] -= amt
			}
			legs = append(legs, l)
		}
		transit := func() []recon.Transit {
			var out []recon.Transit
			for k, v := range balances {
				out = append(out, recon.Transit{Registry: k[0], Peer: k[1], Units: v})
			}
			return out
		}
		got, err := recon.Net(transit(), legs)
		require.NoError(t, err)
		for _, p := range got {
			require.Zero(t, p.Delta, "%+v", p)
		}
		s, d := regs[rng.IntN(2)], regs[2+rng.IntN(2)]
		forged := 1 + rng.Int64N(1000)
		balances[[2]string{d, s}] -= forged
		legs = append(legs, recon.Leg{Source: s, Target: d, Credited: true, CreditUnits: forged})
		got, err = recon.Net(transit(), legs)
		require.NoError(t, err)
		for _, p := range got {
			if (p.A == s && p.B == d) || (p.A == d && p.B == s) {
				require.Equal(t, -forged, p.Delta, fmt.Sprintf("%+v", p))
			} else {
				require.Zero(t, p.Delta, "%+v", p)
			}
		}
	}
}

func TestSinceAndPersisting(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		prev    time.Time
		differs bool
		want    time.Time
	}{
		{"appears", time.Time{}, true, t0},
		{"persists", t0.Add(-time.Hour), true, t0.Add(-time.Hour)},
		{"clears", t0.Add(-time.Hour), false, time.Time{}},
		{"absent", time.Time{}, false, time.Time{}},
	} {
		require.Equal(t, tc.want, recon.Since(tc.prev, tc.differs, t0), tc.name)
	}
	require.False(t, recon.Persisting(time.Time{}, t0, time.Minute))
	require.False(t, recon.Persisting(t0.Add(-59*time.Second), t0, time.Minute))
	require.True(t, recon.Persisting(t0.Add(-time.Minute), t0, time.Minute))
	require.True(t, recon.Persisting(t0.Add(-time.Hour), t0, 0), "no grace: any difference fails")
}
