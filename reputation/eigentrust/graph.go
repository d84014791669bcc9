package eigentrust

import (
	"math"
	"sort"
)

// Graph accumulates the observations local trust is made of: transfers
// (who paid whom, how much), lost disputes and slashes. It is a sum of its
// observations: adding A then B leaves it exactly as adding B then A, or A
// and B at once (every counter is a saturating sum or a set), so a run that
// merges only the events since the last run builds the graph a run over
// every event would. The zero value is not usable; call NewGraph.
type Graph struct {
	ids     map[string]int32 // agent → interned index (insertion order, never exposed)
	dids    []string         // interned index → agent
	pairs   map[uint64]pairState
	lost    map[int32]int64 // disputes lost, per loser
	slashed map[int32]bool
}

// pairState is what agent i's observations of agent j add up to.
type pairState struct {
	volume  int64 // transfer units i paid j, summed, saturating at MaxInt64
	penalty int64 // units of disputes j lost to i, summed, saturating
}

// NewGraph returns an empty graph.
func NewGraph() *Graph {
	return &Graph{ids: map[string]int32{}, pairs: map[uint64]pairState{}, lost: map[int32]int64{}, slashed: map[int32]bool{}}
}

// Agents is the number of agents the graph knows.
func (g *Graph) Agents() int { return len(g.dids) }

// Pairs is the number of (truster, trusted) pairs with an observation.
func (g *Graph) Pairs() int { return len(g.pairs) }

func (g *Graph) id(did string) int32 {
	if i, ok := g.ids[did]; ok {
		return i
	}
	i := int32(len(g.dids))
	g.ids[did] = i
	g.dids = append(g.dids, did)
	return i
}

func key(i, j int32) uint64 { return uint64(uint32(i))<<32 | uint64(uint32(j)) }

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// AddAgent makes did known with no observation: it gets its share of the
// teleportation prior even if nobody ever trades with it.
func (g *Graph) AddAgent(did string) {
	if did != "" {
		g.id(did)
	}
}

// AddTransfer records that from paid to units: from's experience of to.
// A payment to oneself, an empty DID or a non-positive amount says nothing
// about anyone and is ignored.
func (g *Graph) AddTransfer(from, to string, units int64) {
	if from == "" || to == "" || from == to || units <= 0 {
		return
	}
	k := key(g.id(from), g.id(to))
	p := g.pairs[k]
	p.volume = satAdd(p.volume, units)
	g.pairs[k] = p
}

// AddDisputeLoss records that loser lost a dispute to winner over units:
// winner's trust in loser drops by units, and every agent's trust in loser
// is halved once per dispute it lost (see LocalTrust).
func (g *Graph) AddDisputeLoss(winner, loser string, units int64) {
	if winner == "" || loser == "" || winner == loser {
		return
	}
	w, l := g.id(winner), g.id(loser)
	k := key(w, l)
	p := g.pairs[k]
	p.penalty = satAdd(p.penalty, max(units, 0))
	g.pairs[k] = p
	g.lost[l] = satAdd(g.lost[l], 1)
}

// AddSlash records that agent's stake was slashed: nobody trusts it any
// more (its own opinions of others still count).
func (g *Graph) AddSlash(agent string) {
	if agent != "" {
		g.slashed[g.id(agent)] = true
	}
}

// Clone returns an independent copy (a run merges new events into a copy
// of the previous run's graph and keeps the previous one intact).
func (g *Graph) Clone() *Graph {
	c := &Graph{ids: make(map[string]int32, len(g.ids)), dids: append([]string(nil), g.dids...),
		pairs: make(map[uint64]pairState, len(g.pairs)), lost: make(map[int32]int64, len(g.lost)), slashed: make(map[int32]bool, len(g.slashed))}
	for k, v := range g.ids {
		c.ids[k] = v
	}
	for k, v := range g.pairs {
		c.pairs[k] = v
	}
	for k, v := range g.lost {
		c.lost[k] = v
	}
	for k, v := range g.slashed {
		c.slashed[k] = v
	}
	return c
}

// LocalTrust is s_ij, i's trust in j, in base units:
//
//	s_ij = max(0, min(volume_ij, cap) − penalty_ij) >> lost_j, and 0 if j was slashed
//
// volume_ij is what i paid j, capped per pair so two agents washing money
// back and forth gain no more than cap, however much they move; penalty_ij
// the amounts of the disputes j lost to i; lost_j the disputes j lost to
// anyone (each halves everyone's trust in j). Integer arithmetic: exact on
// every machine.
func LocalTrust(volume, penalty, lost int64, slashed bool, pairCap int64) int64 {
	if slashed {
		return 0
	}
	s := min(volume, pairCap) - penalty
	if s <= 0 {
		return 0
	}
	if lost >= 63 {
		return 0
	}
	return s >> uint(lost)
}

// matrix is the graph in compressed sparse rows over agents sorted by DID:
// the order every sum is taken in.
type matrix struct {
	dids   []string
	rowPtr []int32 // row i's entries are col/trust[rowPtr[i]:rowPtr[i+1]]
	col    []int32
	trust  []int64 // s_ij > 0
}

func (g *Graph) matrix(pairCap int64) matrix {
	n := len(g.dids)
	order := make([]int32, n) // sorted position → interned id
	for i := range order {
		order[i] = int32(i)
	}
	sort.Slice(order, func(a, b int) bool { return g.dids[order[a]] < g.dids[order[b]] })
	pos := make([]int32, n) // interned id → sorted position
	m := matrix{dids: make([]string, n), rowPtr: make([]int32, n+1)}
	for p, id := range order {
		pos[id] = int32(p)
		m.dids[p] = g.dids[id]
	}
	type entry struct {
		i, j int32
		s    int64
	}
	entries := make([]entry, 0, len(g.pairs))
	for k, st := range g.pairs {
		i, j := int32(uint32(k>>32)), int32(uint32(k))
		s := LocalTrust(st.volume, st.penalty, g.lost[j], g.slashed[j], pairCap)
		if s > 0 {
			entries = append(entries, entry{pos[i], pos[j], s})
		}
	}
	sort.Slice(entries, func(a, b int) bool {
		if entries[a].i != entries[b].i {
			return entries[a].i < entries[b].i
		}
		return entries[a].j < entries[b].j
	})
	m.col = make([]int32, len(entries))
	m.trust = make([]int64, len(entries))
	for e, x := range entries {
		m.col[e], m.trust[e] = x.j, x.s
		m.rowPtr[x.i+1]++
	}
	for i := range n {
		m.rowPtr[i+1] += m.rowPtr[i]
	}
	return m
}
