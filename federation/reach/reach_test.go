package reach_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/federation/reach"
)

// line builds listings for registries in a line, each listing its
// neighbours.
func line(ids ...string) map[string]reach.Listing {
	out := map[string]reach.Listing{}
	for i, id := range ids {
		var ps []string
		if i > 0 {
			ps = append(ps, ids[i-1])
		}
		if i < len(ids)-1 {
			ps = append(ps, ids[i+1])
		}
		out[id] = reach.Listing{Registry: id, BaseURL: "https://" + id, Peers: ps}
	}
	return out
}

func names(rs []reach.Reached) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s@%d", r.Registry, r.Depth))
	}
	return out
}

func TestReach(t *testing.T) {
	t.Parallel()
	l := line("a", "b", "c", "d", "e")
	oneSided := line("a", "b", "c", "d", "e")
	oneSided["c"] = reach.Listing{Registry: "c", BaseURL: "https://c", Peers: []string{"d"}} // c revoked b; b still lists c
	noBack := line("a", "b", "c")
	noBack["b"] = reach.Listing{Registry: "b", Peers: []string{"c"}} // b dropped a
	missing := line("a", "b", "c", "d", "e")
	delete(missing, "c") // c's list could not be fetched or verified
	diamond := map[string]reach.Listing{
		"a": {Registry: "a", Peers: []string{"b", "c"}},
		"b": {Registry: "b", Peers: []string{"a", "d"}},
		"c": {Registry: "c", Peers: []string{"a", "d"}},
		"d": {Registry: "d", Peers: []string{"b", "c", "e"}},
		"e": {Registry: "e", Peers: []string{"d"}},
	}
	for _, tc := range []struct {
		name     string
		direct   []string
		listings map[string]reach.Listing
		depth    int
		want     []string
	}{
		{"line, default depth", []string{"b"}, l, 4, []string{"b@1", "c@2", "d@3", "e@4"}},
		{"line, depth 3 stops before e", []string{"b"}, l, 3, []string{"b@1", "c@2", "d@3"}},
		{"depth 1: direct peers only", []string{"b"}, l, 1, []string{"b@1"}},
		{"depth 0: nothing", []string{"b"}, l, 0, nil},
		{"no direct peer: nothing", nil, l, 4, nil},
		{"direct peer revoked: all it led to is gone", []string{}, l, 4, nil},
		{"an edge vouched for by one side only is cut", []string{"b"}, oneSided, 4, []string{"b@1"}},
		{"a direct peer that dropped us is not walked through", []string{"b"}, noBack, 4, []string{"b@1"}},
		{"an unverified list ends the path", []string{"b"}, missing, 4, []string{"b@1"}},
		{"self is never reached", []string{"b", "a"}, l, 4, []string{"b@1", "c@2", "d@3", "e@4"}},
		{"diamond: shortest chain, through the lower ID", []string{"b", "c"}, diamond, 4, []string{"b@1", "c@1", "d@2", "e@3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := reach.Reach("a", tc.direct, tc.listings, tc.depth)
			if tc.want == nil {
				require.Empty(t, got)
				return
			}
			require.Equal(t, tc.want, names(got))
		})
	}
	got := reach.Reach("a", []string{"b", "c"}, diamond, 4)
	require.Equal(t, []string{"a", "b", "d", "e"}, got[3].Chain)
	require.Equal(t, "https://e", reach.Reach("a", []string{"b"}, l, 4)[3].BaseURL)
}

// TestReachProperties checks Reach on random graphs against the rules:
// every chain is a path of edges both ends vouch for, starting at a direct
// peer; its length is the shortest such path and within the bound; a
// larger bound never loses a registry, and dropping a direct peer never
// adds one
// (unless it did not list us back, see below).
func TestReachProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	for iter := range 500 {
		n := 2 + rng.IntN(10)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("r%02d", i)
		}
		self := ids[0]
		listings := map[string]reach.Listing{}
		for _, x := range ids {
			if rng.IntN(8) == 0 {
				continue // list unknown
			}
			var ps []string
			for _, z := range ids {
				if z != x && rng.IntN(3) == 0 {
					ps = append(ps, z)
				}
			}
			listings[x] = reach.Listing{Registry: x, Peers: ps}
		}
		var direct []string
		for _, z := range ids[1:] {
			if rng.IntN(3) == 0 {
				direct = append(direct, z)
			}
		}
		depth := 1 + rng.IntN(5)
		got := reach.Reach(self, direct, listings, depth)

		lists := func(x, z string) bool { return slices.Contains(listings[x].Peers, z) }
		// Reference distances: breadth-first over edges both ends list.
		dist := map[string]int{self: 0}
		queue := []string{}
		for _, d := range direct {
			if _, ok := dist[d]; !ok {
				dist[d] = 1
				queue = append(queue, d)
			}
		}
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			if dist[x] >= depth {
				continue
			}
			for _, z := range ids {
				if _, ok := dist[z]; ok {
					continue
				}
				prevOK := dist[x] > 1 || lists(x, self) // a direct peer must list us back to be walked
				if prevOK && lists(x, z) && lists(z, x) {
					dist[z] = dist[x] + 1
					queue = append(queue, z)
				}
			}
		}
		require.Len(t, got, len(dist)-1, "iteration %d", iter)
		for _, r := range got {
			require.Equal(t, dist[r.Registry], r.Depth, "iteration %d: %s", iter, r.Registry)
			require.LessOrEqual(t, r.Depth, depth)
			require.Len(t, r.Chain, r.Depth+1)
			require.Equal(t, self, r.Chain[0])
			require.Contains(t, direct, r.Chain[1])
			for i := 1; i+1 < len(r.Chain); i++ {
				x, z := r.Chain[i], r.Chain[i+1]
				require.True(t, lists(x, z) && lists(z, x), "iteration %d: edge %s-%s", iter, x, z)
				require.True(t, lists(x, r.Chain[i-1]), "iteration %d: %s vouches for %s", iter, x, r.Chain[i-1])
			}
		}
		more := reach.Reach(self, direct, listings, depth+1)
		require.Subset(t, names2(more), names2(got))
		// A direct peer that does not list us back is reached but not
		// walked through, and it shadows longer chains to it; dropping
		// one that does list us back never adds a registry.
		if len(direct) > 0 && lists(direct[0], self) {
			fewer := reach.Reach(self, direct[1:], listings, depth)
			require.Subset(t, names2(got), names2(fewer))
		}
	}
}

func names2(rs []reach.Reached) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Registry)
	}
	return out
}
