package recon

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/theprotocol-dev/theprotocol/money"
)

// Terms besides the per-class sums.
const (
	TermAccounts = "accounts" // number of non-zero balances
	TermDigest   = "digest"   // the balances themselves
)

// Difference is one term on which the EventStore's projection of a
// registry differs from the registry's own checkpoint.
type Difference struct {
	Term      string `json:"term"`            // "<bucket>/<class>", "accounts" or "digest"
	Expected  int64  `json:"expected_units"`  // the checkpoint's value
	Projected int64  `json:"projected_units"` // the EventStore's value
	Delta     int64  `json:"delta_units"`     // projected − expected (0 for the digest)
}

// IsMoney reports whether the term is a sum of balances (the other terms
// count rows or compare digests).
func (d Difference) IsMoney() bool { return strings.Contains(d.Term, "/") }

// Compare lists, sorted by term, every term on which projected differs
// from the checkpoint. A digest mismatch is listed even when every sum
// agrees: money moved between two accounts of one class leaves the sums
// alone. An empty list means the projection is exactly the checkpoint.
func Compare(checkpoint, projected Summary) ([]Difference, error) {
	type pair struct{ exp, proj int64 }
	terms := map[string]*pair{}
	for _, s := range checkpoint.Sums {
		p := terms[s.Term()]
		if p == nil {
			p = &pair{}
			terms[s.Term()] = p
		}
		p.exp += s.Units
	}
	for _, s := range projected.Sums {
		p := terms[s.Term()]
		if p == nil {
			p = &pair{}
			terms[s.Term()] = p
		}
		p.proj += s.Units
	}
	var out []Difference
	for term, p := range terms {
		if p.exp == p.proj {
			continue
		}
		d, err := money.Sub(p.proj, p.exp)
		if err != nil {
			return nil, fmt.Errorf("recon: difference on %s: %w", term, err)
		}
		out = append(out, Difference{Term: term, Expected: p.exp, Projected: p.proj, Delta: d})
	}
	if checkpoint.Accounts != projected.Accounts {
		out = append(out, Difference{Term: TermAccounts, Expected: checkpoint.Accounts, Projected: projected.Accounts,
			Delta: projected.Accounts - checkpoint.Accounts})
	}
	if checkpoint.Digest != projected.Digest {
		out = append(out, Difference{Term: TermDigest})
	}
	slices.SortFunc(out, func(a, b Difference) int { return strings.Compare(a.Term, b.Term) })
	return out, nil
}

// MoneyDelta is Σ|Delta| over the money terms: how many units the
// projection is off by, whichever way (the gauge's value).
func MoneyDelta(ds []Difference) (int64, error) {
	var total int64
	for _, d := range ds {
		if !d.IsMoney() {
			continue
		}
		v := d.Delta
		if v < 0 {
			if v == -v { // MinInt64 has no absolute value
				return 0, fmt.Errorf("recon: difference on %s out of range", d.Term)
			}
			v = -v
		}
		var err error
		if total, err = money.Add(total, v); err != nil {
			return 0, fmt.Errorf("recon: total difference: %w", err)
		}
	}
	return total, nil
}

// Since returns when a difference began: prev when it was already there,
// now when it just appeared, and the zero time when there is none.
func Since(prev time.Time, differs bool, now time.Time) time.Time {
	switch {
	case !differs:
		return time.Time{}
	case prev.IsZero():
		return now
	default:
		return prev
	}
}

// Persisting reports whether a difference that began at since has lasted
// the grace period by now. Differences shorter than that are the normal
// lag between two registries' streams (a credit ingested before its debit,
// an event still in Kafka) and do not fail the audit.
func Persisting(since, now time.Time, grace time.Duration) bool {
	return !since.IsZero() && now.Sub(since) >= grace
}

// Verdict is the frame's audit as the mint gate sees it.
type Verdict struct {
	// Delta is the supply audit's delta (issued + compensation issued −
	// destroyed + transit − circulating), which must be 0.
	Delta int64 `json:"delta"`
	// Failures name every reconciliation or netting difference that has
	// outlasted its grace period, and anything else that makes the audit
	// unreliable (no reconciliation pass lately, a checkpoint overdue).
	Failures []string `json:"failures"`
}

// Clean reports whether minting and burning may go ahead.
func (v Verdict) Clean() bool { return v.Delta == 0 && len(v.Failures) == 0 }
