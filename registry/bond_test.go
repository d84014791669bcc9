package registry

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestDecideBond(t *testing.T) {
	t.Parallel()
	c := BondCriteria{MinAge: 30 * 24 * time.Hour, MinTransfers: 10, MinTrustBps: 5000}
	old := c.MinAge
	for _, tc := range []struct {
		name    string
		f       BondFacts
		verdict BondVerdict
		reason  string
	}{
		{"every floor reached exactly", BondFacts{Agent: AgentActive, Age: old, Transfers: 10, TrustBps: 5000}, BondMature, ""},
		{"well past every floor", BondFacts{Agent: AgentActive, Age: 2 * old, Transfers: 500, TrustBps: 10000}, BondMature, ""},
		{"one nanosecond too young", BondFacts{Agent: AgentActive, Age: old - 1, Transfers: 500, TrustBps: 10000}, BondWait, ReasonBondTooYoung},
		{"one transfer short", BondFacts{Agent: AgentActive, Age: old, Transfers: 9, TrustBps: 10000}, BondWait, ReasonBondFewTransfers},
		{"one basis point of trust short", BondFacts{Agent: AgentActive, Age: old, Transfers: 10, TrustBps: 4999}, BondWait, ReasonBondTrustTooLow},
		{"the first unmet floor is named", BondFacts{Agent: AgentActive, Transfers: 0, TrustBps: 0}, BondWait, ReasonBondTooYoung},
		{"deregistered forfeits, however good its record", BondFacts{Agent: AgentDeregistered, Age: old, Transfers: 500, TrustBps: 10000}, BondForfeit, "agent deregistered"},
		{"missing agent: the bond goes back", BondFacts{Agent: AgentMissing}, BondVoid, "agent missing"},
		{"an unknown state waits", BondFacts{Agent: "suspended", Age: old, Transfers: 500, TrustBps: 10000}, BondWait, "agent suspended"},
	} {
		v, reason := DecideBond(c, tc.f)
		if v != tc.verdict || reason != tc.reason {
			t.Errorf("%s: DecideBond = %s, %q; want %s, %q", tc.name, v, reason, tc.verdict, tc.reason)
		}
	}
	// The bond check runs after the workflow's age timer, with no age floor.
	if v, _ := DecideBond(BondCriteria{MinTransfers: 10, MinTrustBps: 5000}, BondFacts{Agent: AgentActive, Transfers: 10, TrustBps: 5000}); v != BondMature {
		t.Errorf("without an age floor: %s", v)
	}
}

func TestBondNext(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		agent string
		met   bool
		want  BondVerdict
	}{
		{AgentActive, true, BondMature},
		{AgentActive, false, BondWait},
		{AgentDeregistered, true, BondForfeit},
		{AgentDeregistered, false, BondForfeit},
		{AgentMissing, true, BondVoid},
		{AgentMissing, false, BondVoid},
		{"", false, BondWait},
	} {
		if got := BondNext(tc.agent, tc.met); got != tc.want {
			t.Errorf("BondNext(%q, %v) = %s, want %s", tc.agent, tc.met, got, tc.want)
		}
	}
}

// TestDecideBondProperties checks, over seeded random facts, what the rule
// promises whatever the numbers.
func TestDecideBondProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(16, 6))
	agents := []string{AgentActive, AgentActive, AgentDeregistered, AgentMissing, "suspended"}
	for i := range 20000 {
		c := BondCriteria{MinAge: time.Duration(rng.IntN(60)) * 24 * time.Hour, MinTransfers: rng.Int64N(20), MinTrustBps: rng.Int64N(10001)}
		f := BondFacts{Agent: agents[rng.IntN(len(agents))], Age: time.Duration(rng.IntN(90)) * 24 * time.Hour,
			Transfers: rng.Int64N(40), TrustBps: rng.Int64N(10001)}
		v, reason := DecideBond(c, f)
		met := f.Age >= c.MinAge && f.Transfers >= c.MinTransfers && f.TrustBps >= c.MinTrustBps
		switch {
		case v == BondMature && (f.Agent != AgentActive || !met):
			t.Fatalf("#%d: matured with %+v under %+v", i, f, c)
		case f.Agent == AgentActive && met && v != BondMature:
			t.Fatalf("#%d: an active agent past every floor got %s", i, v)
		case f.Agent == AgentDeregistered && v != BondForfeit:
			t.Fatalf("#%d: a deregistered agent got %s", i, v)
		case (v == BondMature) != (reason == ""):
			t.Fatalf("#%d: verdict %s with reason %q", i, v, reason)
		}
		// More of anything never takes a mature bond back (monotone in
		// age, transfers and trust), and the verdict agrees with BondNext.
		more := f
		more.Age += time.Duration(rng.IntN(10)) * time.Hour
		more.Transfers += rng.Int64N(5)
		more.TrustBps += rng.Int64N(100)
		if v2, _ := DecideBond(c, more); v == BondMature && v2 != BondMature {
			t.Fatalf("#%d: more activity undid maturity: %+v", i, more)
		}
		if BondNext(f.Agent, v == BondMature) != v {
			t.Fatalf("#%d: BondNext disagrees with DecideBond on %+v", i, f)
		}
	}
}
