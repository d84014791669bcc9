package eigentrust

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

// The benchmarks: 100,000 agents and 1,000,000 transfers (SPEC's target:
// converged in under 10 s). Run once, e.g.
//
//	go test -run '^$' -bench . -benchtime 1x ./reputation/eigentrust/
const (
	benchAgents    = 100_000
	benchTransfers = 1_000_000
	benchNew       = 10_000
)

func benchTransfersList(seed uint64, n, agents int) []obs {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	name := func(i int) string { return fmt.Sprintf("did:theprotocol:alpha-main:agent-%06d", i) }
	out := make([]obs, n)
	for k := range out {
		// A skewed choice of payees (a few agents are paid often), as in a
		// market; payers uniform.
		to := int(float64(agents) * rng.Float64() * rng.Float64())
		out[k] = obs{kind: 't', a: name(rng.IntN(agents)), b: name(to), units: 1 + rng.Int64N(DefaultPairCapUnits/100)}
	}
	return out
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkFull builds the graph from every transfer and computes it.
func BenchmarkFull(b *testing.B) {
	os := benchTransfersList(1, benchTransfers, benchAgents)
	p := DefaultParams()
	for b.Loop() {
		before := heapInUse()
		t0 := time.Now()
		g := NewGraph()
		apply(g, os)
		build := time.Since(t0)
		graphBytes := heapInUse() - before
		t1 := time.Now()
		r, err := Compute(g, p)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(build.Seconds(), "build-s")
		b.ReportMetric(time.Since(t1).Seconds(), "compute-s")
		b.ReportMetric(float64(r.Iterations), "iterations")
		b.ReportMetric(float64(graphBytes)/(1<<20), "graph-MiB")
		b.ReportMetric(float64(r.Edges), "edges")
		if !r.Converged {
			b.Fatal("not converged")
		}
	}
}

// BenchmarkIncremental is a run after 10,000 new transfers: decode the
// previous run's stored graph, merge the new transfers, compute (from p,
// so the result is bit-identical to a full recomputation). Compare with
// BenchmarkFull plus the cost of reading every event again.
func BenchmarkIncremental(b *testing.B) {
	g := NewGraph()
	apply(g, benchTransfersList(1, benchTransfers, benchAgents))
	stored := g.Encode()
	fresh := benchTransfersList(2, benchNew, benchAgents)
	p := DefaultParams()
	b.ReportMetric(float64(len(stored))/(1<<20), "stored-MiB")
	for b.Loop() {
		t0 := time.Now()
		prev, err := Decode(stored)
		if err != nil {
			b.Fatal(err)
		}
		apply(prev, fresh)
		merge := time.Since(t0)
		t1 := time.Now()
		if _, err := Compute(prev, p); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(merge.Seconds(), "merge-s")
		b.ReportMetric(time.Since(t1).Seconds(), "compute-s")
	}
}

// BenchmarkIterateFloat and BenchmarkIterateFixed compare the float64
// iteration (fixed summation order, products rounded one by one) with a
// fixed-point one on the same matrix: the measurement ADR 0022 chose by.
func BenchmarkIterateFloat(b *testing.B) {
	g := NewGraph()
	apply(g, benchTransfersList(1, benchTransfers, benchAgents))
	p := DefaultParams()
	for b.Loop() {
		if _, err := Compute(g, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIterateFixed(b *testing.B) {
	g := NewGraph()
	apply(g, benchTransfersList(1, benchTransfers, benchAgents))
	p := DefaultParams()
	for b.Loop() {
		it, conv := computeFixed(g, p)
		b.ReportMetric(float64(it), "iterations")
		if !conv {
			b.Fatal("fixed point did not converge")
		}
	}
}

// computeFixed is the fixed-point alternative: local trust in Q31 (c ≤ 1),
// trust in Q32, products in Q63 (a column's sum of c·t never exceeds the
// total trust, 1), truncated back to Q32. Integer arithmetic is exact on
// every machine, but the resolution is 2^-32 ≈ 2.3e-10 absolute, i.e. only
// about five significant digits for one of 100,000 agents (~1e-5 each),
// and truncation leaks mass that must be put back by hand.
func computeFixed(g *Graph, params Params) (int, bool) {
	m := g.matrix(params.PairCapUnits)
	n := len(m.dids)
	const one32 = uint64(1) << 32
	c := make([]uint64, len(m.trust))
	for i := range n {
		var sum int64
		for e := m.rowPtr[i]; e < m.rowPtr[i+1]; e++ {
			sum += m.trust[e]
		}
		for e := m.rowPtr[i]; e < m.rowPtr[i+1]; e++ {
			// Q31 of s/sum, without overflow: s, sum < 2^63.
			c[e] = uint64((float64(m.trust[e]) / float64(sum)) * (1 << 31))
		}
	}
	p := make([]uint64, n)
	for i := range p {
		p[i] = one32 / uint64(n)
	}
	alpha := uint64(params.Alpha * (1 << 32))
	keep := one32 - alpha
	eps := uint64(params.Epsilon * (1 << 32))
	t := slices.Clone(p)
	next := make([]uint64, n)
	for k := 1; k <= params.MaxIterations; k++ {
		clear(next)
		var dangling uint64
		for i := range n {
			lo, hi := m.rowPtr[i], m.rowPtr[i+1]
			if lo == hi {
				dangling += t[i]
				continue
			}
			for e := lo; e < hi; e++ {
				next[m.col[e]] += c[e] * t[i] // Q63
			}
		}
		var delta uint64
		for j := range n {
			col := next[j] >> 31                                     // Q32
			v := (keep*(col+dangling*p[j]>>32))>>32 + alpha*p[j]>>32 // Q32
			d := v - t[j]
			if t[j] > v {
				d = t[j] - v
			}
			delta = max(delta, d)
			next[j] = v
		}
		t, next = next, t
		if delta < eps {
			return k, true
		}
	}
	return params.MaxIterations, false
}
