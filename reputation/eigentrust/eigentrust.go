// Package eigentrust computes global trust scores from local trust by
// power iteration (Kamvar, Schlosser and Garcia-Molina's EigenTrust):
//
//	t⁽ᵏ⁺¹⁾ = (1 − α)·Cᵀ·t⁽ᵏ⁾ + α·p
//
// C is local trust with its rows normalised, p the teleportation prior
// (uniform, or uniform over pre-trusted agents) and α its weight. A row
// with no positive trust (an agent that trusts nobody) is replaced by p, as
// the paper does, so no trust leaks out of the vector.
//
// It is pure: no I/O, no clock, no randomness, no goroutines. The same
// graph and parameters give bit-identical scores and digests on every
// machine: every sum is taken in one fixed order (agents sorted by DID),
// every product is rounded on its own (an explicit float64 conversion,
// which the Go specification forbids the compiler to fuse into a
// multiply-add), and nothing depends on map order.
package eigentrust

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Defaults (SPEC §8).
const (
	DefaultAlpha         = 0.15
	DefaultEpsilon       = 1e-6
	DefaultMaxIterations = 200
	// DefaultPairCapUnits caps the transfer volume one agent's trust in
	// another counts: 1,000 AVT.
	DefaultPairCapUnits int64 = 1_000 * 100_000_000
	// MaxPairCapUnits keeps every row sum exact in int64: a row of
	// 2^23 entries at the largest cap still fits.
	MaxPairCapUnits int64 = 1 << 40
)

// Params are a run's parameters; a run's digest covers them.
type Params struct {
	Alpha         float64 // teleportation weight, (0, 1)
	Epsilon       float64 // stop when ‖t⁽ᵏ⁺¹⁾ − t⁽ᵏ⁾‖∞ < Epsilon
	MaxIterations int     // stop after this many iterations regardless
	PairCapUnits  int64   // per-pair cap on counted transfer volume
	// PreTrusted agents carry the prior p; empty (or none of them in the
	// graph) means p is uniform over every agent.
	PreTrusted []string
}

// DefaultParams are SPEC §8's parameters with a uniform prior.
func DefaultParams() Params {
	return Params{Alpha: DefaultAlpha, Epsilon: DefaultEpsilon, MaxIterations: DefaultMaxIterations, PairCapUnits: DefaultPairCapUnits}
}

// Validate reports parameters no run may use.
func (p Params) Validate() error {
	switch {
	case !(p.Alpha > 0 && p.Alpha < 1):
		return fmt.Errorf("eigentrust: alpha %v is not in (0, 1)", p.Alpha)
	case !(p.Epsilon > 0 && p.Epsilon < 1):
		return fmt.Errorf("eigentrust: epsilon %v is not in (0, 1)", p.Epsilon)
	case p.MaxIterations < 1 || p.MaxIterations > 100_000:
		return fmt.Errorf("eigentrust: max iterations %d is not in [1, 100000]", p.MaxIterations)
	case p.PairCapUnits < 1 || p.PairCapUnits > MaxPairCapUnits:
		return fmt.Errorf("eigentrust: pair cap %d is not in [1, %d]", p.PairCapUnits, MaxPairCapUnits)
	}
	return nil
}

// Result is one computation.
type Result struct {
	Agents []string  // sorted by DID
	Scores []float64 // Scores[i] is Agents[i]'s global trust; they sum to 1 (up to rounding)
	// Iterations done; Converged says whether the last one moved no score
	// by Epsilon or more (false: the iteration cap stopped it), Delta is
	// that last ‖Δ‖∞.
	Iterations int
	Converged  bool
	Delta      float64
	// Edges is the number of positive local-trust entries.
	Edges int
	// Dangling is the final vector's mass on rows that trust nobody.
	Dangling float64

	prior []float64
}

// Compute runs the power iteration over g from t⁽⁰⁾ = p. An empty graph
// gives an empty result.
func Compute(g *Graph, params Params) (Result, error) {
	if err := params.Validate(); err != nil {
		return Result{}, err
	}
	m := g.matrix(params.PairCapUnits)
	n := len(m.dids)
	res := Result{Agents: m.dids, Edges: len(m.col)}
	if n == 0 {
		res.Converged = true
		return res, nil
	}
	// Row-normalise: c_ij = s_ij / Σ_j s_ij; the sum is exact (integers,
	// bounded by MaxPairCapUnits).
	c := make([]float64, len(m.trust))
	for i := range n {
		var sum int64
		for e := m.rowPtr[i]; e < m.rowPtr[i+1]; e++ {
			if sum > math.MaxInt64-m.trust[e] {
				return Result{}, errors.New("eigentrust: a row's local trust overflows int64")
			}
			sum += m.trust[e]
		}
		for e := m.rowPtr[i]; e < m.rowPtr[i+1]; e++ {
			c[e] = float64(m.trust[e]) / float64(sum)
		}
	}
	p := prior(m.dids, params.PreTrusted)
	res.prior = p
	t := slices.Clone(p)
	next := make([]float64, n)
	keep := 1 - params.Alpha
	for k := 1; k <= params.MaxIterations; k++ {
		clear(next)
		dangling := 0.0
		for i := range n {
			ti := t[i]
			lo, hi := m.rowPtr[i], m.rowPtr[i+1]
			if lo == hi {
				dangling += ti
				continue
			}
			for e := lo; e < hi; e++ {
				j := m.col[e]
				next[j] += float64(c[e] * ti)
			}
		}
		delta := 0.0
		for j := range n {
			v := float64(keep*float64(next[j]+float64(dangling*p[j]))) + float64(params.Alpha*p[j])
			next[j] = v
			if d := math.Abs(v - t[j]); d > delta {
				delta = d
			}
		}
		t, next = next, t
		res.Iterations, res.Delta = k, delta
		if delta < params.Epsilon {
			res.Converged = true
			break
		}
	}
	res.Scores = t
	for i := range n {
		if m.rowPtr[i] == m.rowPtr[i+1] {
			res.Dangling += t[i]
		}
	}
	return res, nil
}

// EarnedBps is, per agent, the share of its trust that others' trust gave
// it, in basis points: 10000·(t_i − b_i)/t_i, where b_i = (α + (1−α)·D)·p_i
// is what the teleportation and the dangling rows give every agent
// whatever anyone thinks of it. An agent nobody trusts scores 0; with a
// prior over pre-trusted agents, any other agent with trust scores 10000.
// Rounded down, in [0, 10000]; deterministic like the scores.
func (r Result) EarnedBps(params Params) []int64 {
	out := make([]int64, len(r.Scores))
	for i, t := range r.Scores {
		if !(t > 0) {
			continue
		}
		base := float64(params.Alpha*r.prior[i]) + float64((1-params.Alpha)*float64(r.Dangling*r.prior[i]))
		v := math.Floor(float64(10000 * float64(float64(t-base)/t)))
		out[i] = int64(min(max(v, 0), 10000))
	}
	return out
}

// Ranks are every agent's 1-based rank (1: the most trusted; equal scores
// share the better rank) and the percentile of agents it scores at or
// above (0..100], in O(n log n).
func (r Result) Ranks() (rank []int, percentile []float64) {
	n := len(r.Scores)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case r.Scores[a] > r.Scores[b]:
			return -1
		case r.Scores[a] < r.Scores[b]:
			return 1
		}
		return a - b
	})
	rank, percentile = make([]int, n), make([]float64, n)
	for k := 0; k < n; {
		e := k
		for e < n && r.Scores[idx[e]] == r.Scores[idx[k]] {
			e++
		}
		for _, i := range idx[k:e] {
			rank[i] = k + 1
			percentile[i] = 100 * float64(n-k) / float64(n)
		}
		k = e
	}
	return rank, percentile
}

// prior is p: uniform over the pre-trusted agents present in the graph,
// or over every agent when none is.
func prior(dids []string, preTrusted []string) []float64 {
	p := make([]float64, len(dids))
	var idx []int
	for _, d := range preTrusted {
		if i, ok := slices.BinarySearch(dids, d); ok && !slices.Contains(idx, i) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		w := 1 / float64(len(dids))
		for i := range p {
			p[i] = w
		}
		return p
	}
	w := 1 / float64(len(idx))
	for _, i := range idx {
		p[i] = w
	}
	return p
}

// Digest is the SHA-256 of the result's canonical encoding: "eigentrust-v1",
// the parameters, then every (agent, score) in agent order, scores as
// IEEE-754 bits. Equal digests mean bit-identical vectors.
func (r Result) Digest(params Params) [32]byte {
	h := sha256.New()
	var b []byte
	b = append(b, "eigentrust-v1\x00"...)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(params.Alpha))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(params.Epsilon))
	b = binary.BigEndian.AppendUint64(b, uint64(params.MaxIterations))
	b = binary.BigEndian.AppendUint64(b, uint64(params.PairCapUnits))
	pre := slices.Clone(params.PreTrusted)
	slices.Sort(pre)
	pre = slices.Compact(pre)
	b = binary.AppendUvarint(b, uint64(len(pre)))
	for _, d := range pre {
		b = appendString(b, d)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Agents)))
	h.Write(b)
	for i, d := range r.Agents {
		b = appendString(b[:0], d)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(r.Scores[i]))
		h.Write(b)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Rank is agent i's 1-based rank (1: the most trusted; equal scores share
// the better rank) and the percentile of agents it scores at or above
// (0..100).
func (r Result) Rank(i int) (rank int, percentile float64) {
	s := r.Scores[i]
	above, atOrBelow := 0, 0
	for _, v := range r.Scores {
		if v > s {
			above++
		} else {
			atOrBelow++
		}
	}
	return above + 1, 100 * float64(atOrBelow) / float64(len(r.Scores))
}
