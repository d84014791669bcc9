package recon

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/theprotocol-dev/theprotocol/money"
)

// Transit is the balance of transit:<Peer> on Registry.
type Transit struct {
	Registry string
	Peer     string
	Units    int64
}

// Leg is what the decision logs say of one cross-registry transfer from
// Source to Target: the coordinator's commit (its debit, posting the
// sender's hold to transit:<Target>) and the participant's credit (from
// transit:<Source> to the receiver).
type Leg struct {
	Source, Target string
	Debited        bool
	DebitUnits     int64
	Credited       bool
	CreditUnits    int64
}

// PairNetting is the transit netting of two registries A < B: the sum of
// transit:<B> on A and transit:<A> on B, against what the decision logs
// have committed and not yet credited between them, both ways.
type PairNetting struct {
	A             string `json:"registry_a"`
	B             string `json:"registry_b"`
	TransitUnits  int64  `json:"transit_units"`
	InFlightUnits int64  `json:"in_flight_units"`
	Delta         int64  `json:"delta_units"` // transit − in flight; 0 when every credit has its decision
}

// Net computes the netting of every pair that has a transit balance or a
// leg, sorted by pair. A commit debits the source's sender and credits
// transit:<target> (+amount on the source); the target's credit debits
// transit:<source> (−amount on the target). So the two transit balances
// sum to the debits not yet credited, and to nothing else: a credit with no
// decision, or crediting another amount than the decision's, shows as a
// non-zero Delta on that pair.
func Net(transit []Transit, legs []Leg) ([]PairNetting, error) {
	pairs := map[[2]string]*PairNetting{}
	get := func(a, b string) *PairNetting {
		if b < a {
			a, b = b, a
		}
		p := pairs[[2]string{a, b}]
		if p == nil {
			p = &PairNetting{A: a, B: b}
			pairs[[2]string{a, b}] = p
		}
		return p
	}
	var err error
	for _, t := range transit {
		p := get(t.Registry, t.Peer)
		if p.TransitUnits, err = money.Add(p.TransitUnits, t.Units); err != nil {
			return nil, fmt.Errorf("recon: transit of %s/%s: %w", p.A, p.B, err)
		}
	}
	for _, l := range legs {
		p := get(l.Source, l.Target)
		if l.Debited && !l.Credited {
			if p.InFlightUnits, err = money.Add(p.InFlightUnits, l.DebitUnits); err != nil {
				return nil, fmt.Errorf("recon: in flight between %s and %s: %w", p.A, p.B, err)
			}
		}
	}
	out := make([]PairNetting, 0, len(pairs))
	for _, p := range pairs {
		if p.Delta, err = money.Sub(p.TransitUnits, p.InFlightUnits); err != nil {
			return nil, fmt.Errorf("recon: netting of %s/%s: %w", p.A, p.B, err)
		}
		out = append(out, *p)
	}
	slices.SortFunc(out, func(x, y PairNetting) int {
		return cmp.Or(strings.Compare(x.A, y.A), strings.Compare(x.B, y.B))
	})
	return out, nil
}

// TransitPeer returns the peer a transit account names ("" when account
// is not one).
func TransitPeer(account string) string {
	peer, ok := strings.CutPrefix(account, TransitPrefix)
	if !ok {
		return ""
	}
	return peer
}
