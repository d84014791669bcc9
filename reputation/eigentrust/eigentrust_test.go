package eigentrust

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func tight() Params {
	p := DefaultParams()
	p.Epsilon = 1e-13
	p.MaxIterations = 10_000
	return p
}

func score(t *testing.T, r Result, did string) float64 {
	t.Helper()
	for i, d := range r.Agents {
		if d == did {
			return r.Scores[i]
		}
	}
	t.Fatalf("agent %s not in the result", did)
	return 0
}

func compute(t *testing.T, g *Graph, p Params) Result {
	t.Helper()
	r, err := Compute(g, p)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Converged {
		t.Fatalf("did not converge in %d iterations (delta %g)", r.Iterations, r.Delta)
	}
	return r
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-10 {
		t.Errorf("%s = %.12f, want %.12f", what, got, want)
	}
}

func TestLocalTrust(t *testing.T) {
	for _, c := range []struct {
		name                  string
		volume, penalty, lost int64
		slashed               bool
		want                  int64
	}{
		{"below the cap", 40, 0, 0, false, 40},
		{"capped", 1_000, 0, 0, false, 100},
		{"penalty", 1_000, 30, 0, false, 70},
		{"penalty beyond trust", 50, 80, 0, false, 0},
		{"one lost dispute halves", 80, 0, 1, false, 40},
		{"two lost disputes quarter", 80, 0, 2, false, 20},
		{"many lost disputes", 80, 0, 200, false, 0},
		{"slashed", 80, 0, 0, true, 0},
	} {
		if got := LocalTrust(c.volume, c.penalty, c.lost, c.slashed, 100); got != c.want {
			t.Errorf("%s: LocalTrust = %d, want %d", c.name, got, c.want)
		}
	}
}

// A pays B; B and C trust nobody (dangling rows go to the uniform p). By
// hand: t_A = t_C = a, t_B = 1 − 2a and a = (1−α)(1−a)/3 + α/3, so
// a = 1/(3 + (1−α)) = 1/3.85 and t_B = 1.85/3.85.
func TestHandComputedDangling(t *testing.T) {
	g := NewGraph()
	g.AddTransfer("A", "B", 10)
	g.AddAgent("C")
	r := compute(t, g, tight())
	near(t, "t_A", score(t, r, "A"), 1/3.85)
	near(t, "t_B", score(t, r, "B"), 1.85/3.85)
	near(t, "t_C", score(t, r, "C"), 1/3.85)
}

// Weighted by value, p on A alone: c_AB = 3/4, c_AC = 1/4, c_BA = 1, C
// dangling (its mass goes to p = A). By hand: t_B = 0.85·0.75·t_A,
// t_C = 0.85·0.25·t_A, t_A = 0.85·(t_B + t_C) + 0.15 = 0.7225·t_A + 0.15,
// so t_A = 20/37, t_B = 12.75/37, t_C = 4.25/37.
func TestHandComputedPreTrustedWeighted(t *testing.T) {
	g := NewGraph()
	g.AddTransfer("A", "B", 300)
	g.AddTransfer("A", "C", 100)
	g.AddTransfer("B", "A", 7)
	p := tight()
	p.PreTrusted = []string{"A", "nobody-here"}
	r := compute(t, g, p)
	near(t, "t_A", score(t, r, "A"), 20.0/37)
	near(t, "t_B", score(t, r, "B"), 12.75/37)
	near(t, "t_C", score(t, r, "C"), 4.25/37)
}

// Two components with no edge between them and no dangling row: each keeps
// its population's share of the uniform prior, and inside a symmetric
// component the shares are equal.
func TestDisconnected(t *testing.T) {
	g := NewGraph()
	for _, e := range [][2]string{{"a1", "a2"}, {"a2", "a3"}, {"a3", "a1"}, {"b1", "b2"}, {"b2", "b1"}} {
		g.AddTransfer(e[0], e[1], 5)
	}
	r := compute(t, g, tight())
	near(t, "component a", score(t, r, "a1")+score(t, r, "a2")+score(t, r, "a3"), 3.0/5)
	near(t, "component b", score(t, r, "b1")+score(t, r, "b2"), 2.0/5)
	near(t, "a1", score(t, r, "a1"), 1.0/5)
}

// Nobody trusts anybody: every row is dangling, the vector is p from the
// first iteration on.
func TestAllDangling(t *testing.T) {
	g := NewGraph()
	for _, d := range []string{"x", "y", "z", "w"} {
		g.AddAgent(d)
	}
	r := compute(t, g, DefaultParams())
	if r.Iterations != 1 {
		t.Errorf("iterations = %d, want 1", r.Iterations)
	}
	for i := range r.Scores {
		near(t, r.Agents[i], r.Scores[i], 0.25)
	}
}

func TestEmptyGraph(t *testing.T) {
	r, err := Compute(NewGraph(), DefaultParams())
	if err != nil || len(r.Scores) != 0 || !r.Converged {
		t.Fatalf("empty graph: %+v, %v", r, err)
	}
}

func TestIterationCapRecorded(t *testing.T) {
	g := randomGraph(rand.New(rand.NewPCG(1, 2)), 50, 300)
	p := DefaultParams()
	p.Epsilon = 1e-300
	p.MaxIterations = 7
	r, err := Compute(g, p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Converged || r.Iterations != 7 {
		t.Fatalf("converged=%v iterations=%d, want the cap (7) recorded as not converged", r.Converged, r.Iterations)
	}
}

func TestParamsValidate(t *testing.T) {
	for _, mut := range []func(*Params){
		func(p *Params) { p.Alpha = 0 }, func(p *Params) { p.Alpha = 1 }, func(p *Params) { p.Alpha = math.NaN() },
		func(p *Params) { p.Epsilon = 0 }, func(p *Params) { p.MaxIterations = 0 },
		func(p *Params) { p.PairCapUnits = 0 }, func(p *Params) { p.PairCapUnits = MaxPairCapUnits + 1 },
	} {
		p := DefaultParams()
		mut(&p)
		if _, err := Compute(NewGraph(), p); err == nil {
			t.Errorf("params %+v accepted", p)
		}
	}
}

// A slashed agent keeps only what nobody's trust gives anyone: exactly the
// score of an agent nobody trusts.
func TestSlashZeroesTrust(t *testing.T) {
	g := NewGraph()
	g.AddTransfer("A", "B", 50)
	g.AddTransfer("B", "A", 50)
	g.AddTransfer("A", "S", 50)
	g.AddTransfer("B", "S", 50)
	g.AddTransfer("S", "A", 50)
	g.AddTransfer("F", "A", 50) // F: trusted by nobody
	before := compute(t, g, tight())
	g.AddSlash("S")
	after := compute(t, g, tight())
	if !(score(t, after, "S") < score(t, before, "S")) {
		t.Errorf("slash did not lower S: %g → %g", score(t, before, "S"), score(t, after, "S"))
	}
	if math.Float64bits(score(t, after, "S")) != math.Float64bits(score(t, after, "F")) {
		t.Errorf("slashed S = %g, want exactly the untrusted F's %g", score(t, after, "S"), score(t, after, "F"))
	}
}

// A lost dispute lowers the loser's score: the winner's trust in it drops
// by the amount, everyone else's is halved.
func TestDisputeLossLowersTrust(t *testing.T) {
	g := NewGraph()
	for _, e := range [][2]string{{"A", "L"}, {"B", "L"}, {"A", "B"}, {"B", "A"}, {"L", "A"}, {"L", "B"}} {
		g.AddTransfer(e[0], e[1], 100)
	}
	before := compute(t, g, tight())
	g.AddDisputeLoss("A", "L", 100)
	after := compute(t, g, tight())
	if !(score(t, after, "L") < score(t, before, "L")) {
		t.Errorf("lost dispute did not lower L: %g → %g", score(t, before, "L"), score(t, after, "L"))
	}
}

// Wash trading: two agents moving a million times the cap back and forth
// end exactly where two agents moving the cap once do.
func TestWashTradingSaturatesAtCap(t *testing.T) {
	build := func(wash int64) *Graph {
		g := randomGraph(rand.New(rand.NewPCG(7, 7)), 30, 200)
		for range 1000 {
			g.AddTransfer("wash-1", "wash-2", wash/1000)
			g.AddTransfer("wash-2", "wash-1", wash/1000)
		}
		g.AddTransfer("agent-000", "wash-1", 10)
		// Each also pays someone outside: without the cap, its row would
		// put ever more weight on its partner as the volume grows.
		g.AddTransfer("wash-1", "agent-001", 10)
		g.AddTransfer("wash-2", "agent-002", 10)
		return g
	}
	p := DefaultParams()
	atCap := compute(t, build(p.PairCapUnits*1000), p)
	washed := compute(t, build(p.PairCapUnits*1_000_000*1000), p)
	if atCap.Digest(p) != washed.Digest(p) {
		t.Fatalf("wash trading beyond the cap changed the scores: %g vs %g", score(t, atCap, "wash-1"), score(t, washed, "wash-1"))
	}
}

// The Sybil ring. R is a set of agents whose rows point only inside R
// (they trade only among themselves) and E = Σ_{i∉R} t_i·c_i(R) the trust
// flowing in from outside. At the fixed point
//
//	T_R = (1−α)·(T_R + E + D·p(R)) + α·p(R)  ⇒  T_R = p(R) + (1−α)/α·(E + D·p(R))
//
// where D is the dangling mass. With no honest agent paying the ring and
// no dangling row, the ring gets exactly its teleportation share p(R),
// whatever volume it washes internally: m/N with a uniform prior, 0 with a
// prior over pre-trusted honest agents.
func TestSybilRingBoundedByTeleportation(t *testing.T) {
	const honest, ring = 40, 25
	build := func(ringVolume int64, inflow bool) *Graph {
		g := randomGraph(rand.New(rand.NewPCG(3, 4)), honest, 400)
		for i := range ring {
			for j := range ring {
				if i != j {
					g.AddTransfer(fmt.Sprintf("sybil-%03d", i), fmt.Sprintf("sybil-%03d", j), ringVolume)
				}
			}
		}
		if inflow {
			g.AddTransfer("agent-001", "sybil-000", 1_000)
		}
		return g
	}
	ringTotal := func(r Result) float64 {
		s := 0.0
		for i, d := range r.Agents {
			if len(d) > 6 && d[:6] == "sybil-" {
				s += r.Scores[i]
			}
		}
		return s
	}
	p := tight()
	const tol = 1e-9
	for _, vol := range []int64{1, p.PairCapUnits, math.MaxInt64 / 2} {
		r := compute(t, build(vol, false), p)
		share := float64(ring) / float64(honest+ring)
		if got := ringTotal(r); got > share+tol {
			t.Errorf("volume %d: ring total %.12f exceeds its teleportation share %.12f", vol, got, share)
		}
	}
	pre := p
	for i := range honest {
		pre.PreTrusted = append(pre.PreTrusted, fmt.Sprintf("agent-%03d", i))
	}
	r := compute(t, build(math.MaxInt64/2, false), pre)
	if got := ringTotal(r); got > tol {
		t.Errorf("pre-trusted prior: ring total %.12f, want 0", got)
	}
	// One honest agent pays into the ring: the bound grows by (1−α)/α·E.
	r = compute(t, build(math.MaxInt64/2, true), p)
	inflow := inflowInto(t, build(math.MaxInt64/2, true), r, p, "sybil-")
	share := float64(ring) / float64(honest+ring)
	bound := share + (1-p.Alpha)/p.Alpha*inflow
	if got := ringTotal(r); got > bound+tol {
		t.Errorf("with inflow %.12f: ring total %.12f exceeds %.12f", inflow, got, bound)
	}
	if got := ringTotal(r); got <= share {
		t.Errorf("with inflow the ring total %.12f should exceed its share %.12f (the test would not see a broken bound)", got, share)
	}
}

// inflowInto is E for the agents whose DID starts with prefix.
func inflowInto(t *testing.T, g *Graph, r Result, p Params, prefix string) float64 {
	t.Helper()
	m := g.matrix(p.PairCapUnits)
	in := func(d string) bool { return len(d) >= len(prefix) && d[:len(prefix)] == prefix }
	e := 0.0
	for i := range m.dids {
		if in(m.dids[i]) {
			continue
		}
		var sum, into int64
		for k := m.rowPtr[i]; k < m.rowPtr[i+1]; k++ {
			sum += m.trust[k]
			if in(m.dids[m.col[k]]) {
				into += m.trust[k]
			}
		}
		if sum > 0 {
			e += r.Scores[i] * float64(into) / float64(sum)
		}
	}
	return e
}

// randomGraph is n agents ("agent-000"...) and about m transfers, every
// agent paying at least one other (no dangling row).
func randomGraph(rng *rand.Rand, n, m int) *Graph {
	g := NewGraph()
	name := func(i int) string { return fmt.Sprintf("agent-%03d", i) }
	for i := range n {
		g.AddTransfer(name(i), name((i+1)%n), 1+rng.Int64N(1_000_000))
	}
	for range m {
		g.AddTransfer(name(rng.IntN(n)), name(rng.IntN(n)), 1+rng.Int64N(1_000_000_000))
	}
	return g
}

type obs struct {
	kind  byte // t, d, s
	a, b  string
	units int64
}

func randomObservations(rng *rand.Rand, n, m int) []obs {
	var out []obs
	name := func(i int) string { return fmt.Sprintf("did:tp:%05d", i) }
	for range m {
		switch x := rng.IntN(100); {
		case x < 94:
			out = append(out, obs{kind: 't', a: name(rng.IntN(n)), b: name(rng.IntN(n)), units: 1 + rng.Int64N(5*DefaultPairCapUnits/10)})
		case x < 98:
			out = append(out, obs{kind: 'd', a: name(rng.IntN(n)), b: name(rng.IntN(n)), units: rng.Int64N(DefaultPairCapUnits)})
		default:
			out = append(out, obs{kind: 's', a: name(rng.IntN(n))})
		}
	}
	return out
}

func apply(g *Graph, os []obs) {
	for _, o := range os {
		switch o.kind {
		case 't':
			g.AddTransfer(o.a, o.b, o.units)
		case 'd':
			g.AddDisputeLoss(o.a, o.b, o.units)
		case 's':
			g.AddSlash(o.a)
		}
	}
}

// Two runs over the same events, added in different orders, give
// byte-identical encodings, score vectors and digests; and a fixed graph's
// digest is pinned, so a machine computing other bits fails here.
func TestDeterminism(t *testing.T) {
	os := randomObservations(rand.New(rand.NewPCG(11, 12)), 300, 3000)
	g1 := NewGraph()
	apply(g1, os)
	shuffled := append([]obs(nil), os...)
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	g2 := NewGraph()
	apply(g2, shuffled)
	if !bytes.Equal(g1.Encode(), g2.Encode()) {
		t.Fatal("the same observations in another order encode differently")
	}
	p := DefaultParams()
	r1, r2 := compute(t, g1, p), compute(t, g2, p)
	for i := range r1.Scores {
		if math.Float64bits(r1.Scores[i]) != math.Float64bits(r2.Scores[i]) || r1.Agents[i] != r2.Agents[i] {
			t.Fatalf("agent %d differs: %s %x vs %s %x", i, r1.Agents[i], math.Float64bits(r1.Scores[i]), r2.Agents[i], math.Float64bits(r2.Scores[i]))
		}
	}
	d1, d2 := r1.Digest(p), r2.Digest(p)
	if d1 != d2 {
		t.Fatal("digests differ")
	}
	// Pinned: recomputed on other machines and architectures must match.
	const golden = "214f816b4c4727401a279941a43196972e9ed518c537a43f44a705c27c06a462"
	if got := hex.EncodeToString(d1[:]); got != golden {
		t.Errorf("digest %s, pinned %s: the computation is no longer bit-identical to the recorded one", got, golden)
	}
	if r1.Iterations != r2.Iterations || !r1.Converged {
		t.Errorf("iterations %d/%d converged %v", r1.Iterations, r2.Iterations, r1.Converged)
	}
}

// Incremental = full: a graph decoded from the previous run's encoding and
// merged with the events since computes bit for bit what a graph of every
// event does.
func TestIncrementalEqualsFull(t *testing.T) {
	os := randomObservations(rand.New(rand.NewPCG(21, 22)), 400, 5000)
	full := NewGraph()
	apply(full, os)
	prev := NewGraph()
	apply(prev, os[:3000])
	stored := prev.Encode()
	for _, cut := range [][2]int{{3000, 4000}, {4000, 5000}} {
		g, err := Decode(stored)
		if err != nil {
			t.Fatal(err)
		}
		apply(g, os[cut[0]:cut[1]])
		stored = g.Encode()
	}
	if !bytes.Equal(stored, full.Encode()) {
		t.Fatal("incremental graph differs from the full one")
	}
	g, _ := Decode(stored)
	p := DefaultParams()
	if compute(t, g, p).Digest(p) != compute(t, full, p).Digest(p) {
		t.Fatal("incremental scores differ from the full recomputation")
	}
	if g.InputDigest() != full.InputDigest() {
		t.Fatal("input digests differ")
	}
}

// Property: on random graphs the scores are a probability vector (≥ 0,
// summing to 1), encode/decode round-trips, and a shuffled insertion order
// gives the same digest.
func TestPropertyRandomGraphs(t *testing.T) {
	rng := rand.New(rand.NewPCG(99, 100))
	for iter := range 40 {
		n := 1 + rng.IntN(60)
		os := randomObservations(rng, n, rng.IntN(400))
		g := NewGraph()
		g.AddAgent("did:tp:lonely")
		apply(g, os)
		p := DefaultParams()
		if rng.IntN(2) == 0 {
			p.PreTrusted = []string{"did:tp:00000", "did:tp:00001"}
		}
		r := compute(t, g, p)
		sum := 0.0
		for _, s := range r.Scores {
			if s < 0 || math.IsNaN(s) {
				t.Fatalf("iter %d: score %g", iter, s)
			}
			sum += s
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Fatalf("iter %d: scores sum to %.15f", iter, sum)
		}
		enc := g.Encode()
		back, err := Decode(enc)
		if err != nil || !bytes.Equal(back.Encode(), enc) {
			t.Fatalf("iter %d: round trip: %v", iter, err)
		}
		rng.Shuffle(len(os), func(i, j int) { os[i], os[j] = os[j], os[i] })
		g2 := NewGraph()
		apply(g2, os)
		g2.AddAgent("did:tp:lonely")
		if compute(t, g2, p).Digest(p) != r.Digest(p) {
			t.Fatalf("iter %d: order changed the digest", iter)
		}
	}
}

// Decode refuses every truncation and corrupt orders instead of building a
// wrong graph.
func TestDecodeRejectsMalformed(t *testing.T) {
	g := NewGraph()
	apply(g, randomObservations(rand.New(rand.NewPCG(1, 1)), 10, 40))
	enc := g.Encode()
	for i := range len(enc) {
		if _, err := Decode(enc[:i]); err == nil {
			t.Fatalf("truncation to %d bytes accepted", i)
		}
	}
	if _, err := Decode(append(append([]byte(nil), enc...), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	// Two agents swapped: out of order.
	h := NewGraph()
	h.AddTransfer("a", "b", 1)
	bad := h.Encode()
	i := bytes.Index(bad, []byte{1, 'a'})
	j := bytes.Index(bad, []byte{1, 'b'})
	bad[i+1], bad[j+1] = 'b', 'a'
	if _, err := Decode(bad); err == nil {
		t.Fatal("agents out of order accepted")
	}
}

func TestRank(t *testing.T) {
	r := Result{Agents: []string{"a", "b", "c", "d"}, Scores: []float64{0.1, 0.4, 0.4, 0.1}}
	ranks, pcts := r.Ranks()
	for i, want := range []struct {
		rank int
		pct  float64
	}{{3, 50}, {1, 100}, {1, 100}, {3, 50}} {
		rank, pct := r.Rank(i)
		if rank != want.rank || pct != want.pct || ranks[i] != want.rank || pcts[i] != want.pct {
			t.Errorf("agent %d: rank %d pct %g, want %d %g", i, rank, pct, want.rank, want.pct)
		}
	}
}

// Earned share: in TestHandComputedDangling's graph C is trusted by
// nobody (0 bps) and B by A: t_B = 1.85/3.85, baseline b = (α + (1−α)·D)/3
// with D = t_B + t_C = 2.85/3.85.
func TestEarnedBps(t *testing.T) {
	g := NewGraph()
	g.AddTransfer("A", "B", 10)
	g.AddAgent("C")
	p := tight()
	r := compute(t, g, p)
	bps := r.EarnedBps(p)
	base := (0.15 + 0.85*2.85/3.85) / 3
	want := int64(math.Floor(10000 * (1.85/3.85 - base) / (1.85 / 3.85)))
	if bps[1] != want || bps[0] != 0 || bps[2] != 0 {
		t.Fatalf("earned bps %v, want [0 %d 0]", bps, want)
	}
}

// Property: the Sybil bound T_R = p(R) + (1−α)/α·(E + D·p(R)) holds (to
// the convergence tolerance) for random honest networks, random rings of
// random sizes and volumes, and random payments into the ring.
func TestPropertySybilBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 41))
	p := tight()
	for iter := range 30 {
		honest, ring := 5+rng.IntN(40), 2+rng.IntN(30)
		g := randomGraph(rng, honest, rng.IntN(300))
		for range ring * (1 + rng.IntN(4)) {
			a, b := rng.IntN(ring), rng.IntN(ring)
			g.AddTransfer(fmt.Sprintf("sybil-%03d", a), fmt.Sprintf("sybil-%03d", b), 1+rng.Int64N(math.MaxInt64/4))
		}
		for i := range ring { // every ring member trades inside the ring
			g.AddTransfer(fmt.Sprintf("sybil-%03d", i), fmt.Sprintf("sybil-%03d", (i+1)%ring), 1)
		}
		for range rng.IntN(3) {
			g.AddTransfer(fmt.Sprintf("agent-%03d", rng.IntN(honest)), fmt.Sprintf("sybil-%03d", rng.IntN(ring)), 1+rng.Int64N(1000))
		}
		r := compute(t, g, p)
		total, pr := 0.0, 0.0
		for i, d := range r.Agents {
			if d[:6] == "sybil-" {
				total += r.Scores[i]
				pr += r.prior[i]
			}
		}
		e := inflowInto(t, g, r, p, "sybil-")
		bound := pr + (1-p.Alpha)/p.Alpha*(e+r.Dangling*pr)
		if total > bound+1e-9 {
			t.Fatalf("iter %d: ring total %.12f exceeds the bound %.12f (p(R) %.6f, E %.6f, D %.6f)", iter, total, bound, pr, e, r.Dangling)
		}
	}
}

// Decode never panics, and what it accepts encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	g := NewGraph()
	apply(g, randomObservations(rand.New(rand.NewPCG(2, 3)), 6, 20))
	f.Add(g.Encode())
	f.Add([]byte(graphMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(d.Encode(), b) {
			t.Fatalf("accepted input does not round-trip")
		}
	})
}
