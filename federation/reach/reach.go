// Package reach decides which registries a registry trusts through the
// federation graph: a breadth-first walk from its own licensed peers over
// the peer lists those registries published, bounded in depth. It is pure:
// the lists are fetched and their signatures checked elsewhere; here only
// the rule of which edge counts.
//
// An edge X → Z counts only when both ends vouch for it: X lists Z as an
// active peer and Z lists X. A registry that suspended or revoked the one
// it was reached through, or one whose list could not be fetched and
// verified, is not reached that way; a licence cut at either end cuts the
// path.
package reach

import (
	"slices"
	"sort"
)

// Listing is what one registry published about itself: its active peers,
// as verified by the caller of Reach.
type Listing struct {
	Registry string
	// BaseURL is where the listing was fetched and the registry's identity
	// verified (its mTLS listener).
	BaseURL string
	// Peers are the registries it lists as active peers.
	Peers []string
}

// Reached is one registry of the trusted set.
type Reached struct {
	Registry string
	BaseURL  string
	// Depth is the number of hops from the walking registry (1: a direct
	// peer).
	Depth int
	// Chain is the path by which it was reached, from the walking
	// registry to this one (Depth+1 entries): each registry in it listed
	// the next, and the next listed it back.
	Chain []string
}

// Reach walks from self through its direct peers (the ones self itself
// licenses, active) over listings, at most maxDepth hops, and returns every
// registry reached with the shortest chain, ordered by depth then ID.
// Direct peers are always reached (self's own licence is the attestation)
// but are walked through only when their listing names self back. Ties
// between chains of one length go to the chain through the lower registry
// IDs: which chain is shown, never who owns an account.
func Reach(self string, direct []string, listings map[string]Listing, maxDepth int) []Reached {
	if maxDepth < 1 {
		return nil
	}
	seen := map[string]bool{self: true}
	var out []Reached
	var frontier []Reached
	ds := slices.Clone(direct)
	sort.Strings(ds)
	for _, d := range ds {
		if d == "" || seen[d] {
			continue
		}
		seen[d] = true
		r := Reached{Registry: d, BaseURL: listings[d].BaseURL, Depth: 1, Chain: []string{self, d}}
		out = append(out, r)
		frontier = append(frontier, r)
	}
	for depth := 2; depth <= maxDepth && len(frontier) > 0; depth++ {
		var next []Reached
		for _, from := range frontier {
			l, ok := listings[from.Registry]
			prev := from.Chain[len(from.Chain)-2]
			if !ok || !slices.Contains(l.Peers, prev) {
				// Its list is unknown, or it no longer vouches for the
				// registry we reached it through: not walked through.
				continue
			}
			ps := slices.Clone(l.Peers)
			sort.Strings(ps)
			for _, z := range ps {
				if z == "" || seen[z] {
					continue
				}
				zl, ok := listings[z]
				if !ok || !slices.Contains(zl.Peers, from.Registry) {
					continue
				}
				seen[z] = true
				chain := append(slices.Clone(from.Chain), z)
				next = append(next, Reached{Registry: z, BaseURL: zl.BaseURL, Depth: depth, Chain: chain})
			}
		}
		out = append(out, next...)
		frontier = next
	}
	return out
}
