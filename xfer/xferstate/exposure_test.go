package xferstate

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestCapsFor(t *testing.T) {
	t.Parallel()
	c := Caps{Default: 100, PerPeer: map[string]int64{"b": 5, "z": 0}}
	for peer, want := range map[string]int64{"a": 100, "b": 5, "z": 0, "": 100} {
		if got := c.For(peer); got != want {
			t.Errorf("For(%q) = %d, want %d", peer, got, want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid caps refused: %v", err)
	}
	for name, bad := range map[string]Caps{
		"negative default": {Default: -1},
		"negative peer":    {Default: 1, PerPeer: map[string]int64{"b": -5}},
	} {
		if bad.Validate() == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestExposureRules(t *testing.T) {
	t.Parallel()
	const maxI, minI = math.MaxInt64, math.MinInt64
	for _, c := range []struct {
		name            string
		transit, limit  int64
		headroom        int64
		exposure        int64
		creditOfTenOK   bool
		creditOfLimitOK bool
	}{
		{"untouched", 0, 100, 100, 0, true, true},
		{"half used", -50, 100, 50, 50, true, false},
		{"exactly at the cap", -100, 100, 0, 100, false, false},
		{"beyond a lowered cap", -150, 100, -50, 150, false, false},
		{"more sent than received", 40, 100, 140, -40, true, true},
		{"zero cap", 0, 0, 0, 0, false, true}, // a credit of the limit (0) moves nothing
		{"negative cap is zero", -1, -7, -1, 1, false, false},
		{"saturates up", maxI - 10, 100, maxI, -(maxI - 10), true, true},
		{"lowest balance", minI, 100, minI + 100, maxI, false, false},
	} {
		if got := Headroom(c.transit, c.limit); got != c.headroom {
			t.Errorf("%s: Headroom(%d, %d) = %d, want %d", c.name, c.transit, c.limit, got, c.headroom)
		}
		if got := Exposure(c.transit); got != c.exposure {
			t.Errorf("%s: Exposure(%d) = %d, want %d", c.name, c.transit, got, c.exposure)
		}
		// The commit rule looks at the balance after the credit.
		if c.transit >= minI+10 {
			if got := CreditAllowed(c.transit-10, c.limit); got != c.creditOfTenOK {
				t.Errorf("%s: a credit of 10 allowed = %v", c.name, got)
			}
		}
		if c.limit > 0 && c.transit >= minI+c.limit {
			if got := CreditAllowed(c.transit-c.limit, c.limit); got != c.creditOfLimitOK {
				t.Errorf("%s: a credit of the cap allowed = %v", c.name, got)
			}
		}
	}
}

func TestReserve(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name               string
		headroom, reserved int64
		amounts            []int64
		want               []bool
	}{
		{"all fit", 100, 0, []int64{10, 20, 70}, []bool{true, true, true}},
		{"open prepares count", 100, 80, []int64{10, 20, 10}, []bool{true, false, true}},
		{"in order, a later smaller one may fit", 50, 0, []int64{30, 30, 20}, []bool{true, false, true}},
		{"nothing left", 0, 0, []int64{1}, []bool{false}},
		{"beyond the cap already", -10, 0, []int64{1}, []bool{false}},
		{"non-positive amounts never", 100, 0, []int64{0, -5}, []bool{false, false}},
		{"huge headroom", math.MaxInt64, math.MaxInt64 - 5, []int64{5, 1}, []bool{true, false}},
		{"lowest headroom", math.MinInt64, 10, []int64{1}, []bool{false}},
	} {
		got := Reserve(c.headroom, c.reserved, c.amounts)
		for i := range c.want {
			if got[i] != c.want[i] {
				t.Errorf("%s: Reserve(%d, %d, %v) = %v, want %v", c.name, c.headroom, c.reserved, c.amounts, got, c.want)
				break
			}
		}
	}
	r := RefusalReason("alpha", 5, 90, 3, 95)
	if !strings.HasPrefix(r, ReasonExposureCap) || !strings.Contains(r, "alpha") || !strings.Contains(r, "95") {
		t.Errorf("reason %q does not name the cap, the peer and the limit", r)
	}
}

// TestExposurePropertyNeverPastTheCap runs random sequences of prepares
// and commits through the two rules, the way the participant applies
// them, and checks with exact arithmetic that no sequence ever leaves the
// exposure beyond the cap, and that a refusal happens only when the
// amount really did not fit.
func TestExposurePropertyNeverPastTheCap(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(18, 5))
	for i := range 5000 {
		limit := rng.Int64N(1_000)
		if rng.IntN(10) == 0 {
			limit = math.MaxInt64 - rng.Int64N(10)
		}
		transit := rng.Int64N(2_000) - 1_000
		if transit < -limit { // start within the cap: prior state was legal
			transit = -limit
		}
		var open []int64 // prepared, not yet committed
		reserved := int64(0)
		for step := range 40 {
			if len(open) == 0 || rng.IntN(2) == 0 {
				amounts := make([]int64, 1+rng.IntN(4))
				for k := range amounts {
					amounts[k] = 1 + rng.Int64N(400)
				}
				ok := Reserve(Headroom(transit, limit), reserved, amounts)
				free := new(big.Int).Sub(big.NewInt(Headroom(transit, limit)), big.NewInt(reserved))
				for k, a := range amounts {
					fits := free.Cmp(big.NewInt(a)) >= 0
					if ok[k] != fits {
						t.Fatalf("#%d/%d: amount %d with %s free: admitted=%v", i, step, a, free, ok[k])
					}
					if ok[k] {
						free.Sub(free, big.NewInt(a))
						open = append(open, a)
						reserved += a
					}
				}
				continue
			}
			// Commit the oldest open prepare.
			a := open[0]
			open = open[1:]
			reserved -= a
			after := transit - a
			if !CreditAllowed(after, limit) {
				t.Fatalf("#%d/%d: a reserved prepare of %d refused at commit (transit %d, cap %d)", i, step, a, transit, limit)
			}
			transit = after
			exp := new(big.Int).Neg(big.NewInt(transit))
			if exp.Cmp(big.NewInt(limit)) > 0 {
				t.Fatalf("#%d/%d: exposure %s beyond the cap %d", i, step, exp, limit)
			}
			// The commit rule alone refuses anything that would pass the cap.
			if h := Headroom(transit, limit); h < math.MaxInt64 {
				if CreditAllowed(transit-(h+1), limit) {
					t.Fatalf("#%d/%d: a credit of %d past the cap allowed", i, step, h+1)
				}
			}
		}
	}
}
