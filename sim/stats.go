package sim

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Histogram buckets latencies on a log scale (each bucket 5 % wider than
// the previous, from 10 µs), so percentiles cost a pass over ~300
// counters however many samples there are, within 5 %.
type Histogram struct {
	counts [histBuckets]int64
	n      int64
}

const (
	histBuckets = 320
	histMin     = 10 * time.Microsecond
	histGrowth  = 1.05
)

var histLogGrowth = math.Log(histGrowth)

func bucketOf(d time.Duration) int {
	if d <= histMin {
		return 0
	}
	i := int(math.Log(float64(d)/float64(histMin))/histLogGrowth) + 1
	return min(i, histBuckets-1)
}

// upper is bucket i's upper bound.
func upper(i int) time.Duration {
	return time.Duration(float64(histMin) * math.Pow(histGrowth, float64(i)))
}

// Add records one sample.
func (h *Histogram) Add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.n++
}

// Count is the number of samples.
func (h *Histogram) Count() int64 { return h.n }

// Quantile is the upper bound of the bucket holding the q-th sample
// (0 < q ≤ 1); 0 without samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return upper(i)
		}
	}
	return upper(histBuckets - 1)
}

// Stats counts successes, latencies and errors per operation kind.
type Stats struct {
	mu      sync.Mutex
	start   time.Time
	loadEnd time.Time // when operations stopped being started (zero: still running)
	lat     map[string]*Histogram
	errs    map[string]map[string]int64 // kind → code → count
	done    int64                       // operations completed (any outcome)
	failed  int64                       // operations refused or in doubt
}

// NewStats starts counting now.
func NewStats() *Stats {
	return &Stats{start: time.Now(), lat: map[string]*Histogram{}, errs: map[string]map[string]int64{}}
}

// Observe records a successful request of kind.
func (s *Stats) Observe(kind string, d time.Duration) {
	s.mu.Lock()
	h := s.lat[kind]
	if h == nil {
		h = &Histogram{}
		s.lat[kind] = h
	}
	h.Add(d)
	s.mu.Unlock()
}

// Error records a failed request of kind with its code.
func (s *Stats) Error(kind, code string) {
	s.mu.Lock()
	m := s.errs[kind]
	if m == nil {
		m = map[string]int64{}
		s.errs[kind] = m
	}
	m[code]++
	s.mu.Unlock()
}

// LoadOver marks the end of the load window: operations still in flight
// finish (their retries can take a while) but rates are per second of
// load.
func (s *Stats) LoadOver() {
	s.mu.Lock()
	if s.loadEnd.IsZero() {
		s.loadEnd = time.Now()
	}
	s.mu.Unlock()
}

// OpDone counts a finished operation; ok false when it was refused or
// stayed in doubt.
func (s *Stats) OpDone(ok bool) {
	s.mu.Lock()
	s.done++
	if !ok {
		s.failed++
	}
	s.mu.Unlock()
}

// KindSummary is one kind's figures.
type KindSummary struct {
	Kind   string           `json:"kind"`
	OK     int64            `json:"ok"`
	PerSec float64          `json:"per_sec"`
	P50    time.Duration    `json:"p50_ns"`
	P99    time.Duration    `json:"p99_ns"`
	Errors map[string]int64 `json:"errors,omitempty"`
}

// Summary is the figures so far.
type Summary struct {
	Elapsed time.Duration `json:"elapsed_ns"` // until the last operation finished
	Load    time.Duration `json:"load_ns"`    // operations were started during this window; rates are over it
	Ops     int64         `json:"operations"`
	Failed  int64         `json:"operations_failed"`
	PerSec  float64       `json:"operations_per_sec"`
	Kinds   []KindSummary `json:"kinds"`
}

// Snapshot summarises the counters.
func (s *Stats) Snapshot() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := time.Since(s.start)
	el := total
	if !s.loadEnd.IsZero() {
		el = s.loadEnd.Sub(s.start)
	}
	sum := Summary{Elapsed: total, Load: el, Ops: s.done, Failed: s.failed, PerSec: float64(s.done) / el.Seconds()}
	kinds := map[string]bool{}
	for k := range s.lat {
		kinds[k] = true
	}
	for k := range s.errs {
		kinds[k] = true
	}
	for _, k := range sortedKeys(kinds) {
		ks := KindSummary{Kind: k}
		if h := s.lat[k]; h != nil {
			ks.OK, ks.P50, ks.P99 = h.Count(), h.Quantile(0.50), h.Quantile(0.99)
			ks.PerSec = float64(ks.OK) / el.Seconds()
		}
		if len(s.errs[k]) > 0 {
			ks.Errors = map[string]int64{}
			for c, n := range s.errs[k] {
				ks.Errors[c] = n
			}
		}
		sum.Kinds = append(sum.Kinds, ks)
	}
	return sum
}

// Line is the one-line live progress.
func (sum Summary) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%5.1fs ops %d (%.0f/s, %d failed)", sum.Elapsed.Seconds(), sum.Ops, sum.PerSec, sum.Failed)
	errs := map[string]int64{}
	for _, k := range sum.Kinds {
		if k.OK > 0 {
			fmt.Fprintf(&b, " | %s %.0f/s p50 %s p99 %s", k.Kind, k.PerSec, round(k.P50), round(k.P99))
		}
		for c, n := range k.Errors {
			errs[c] += n
		}
	}
	if len(errs) > 0 {
		b.WriteString(" | errors")
		for _, c := range sortedKeys(errs) {
			fmt.Fprintf(&b, " %s=%d", c, errs[c])
		}
	}
	return b.String()
}

// Table is the end-of-run figures, one kind a line.
func (sum Summary) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d operations over %.1fs of load (the last finished at %.1fs): %.1f/s, %d refused or in doubt\n", sum.Ops, sum.Load.Seconds(), sum.Elapsed.Seconds(), sum.PerSec, sum.Failed)
	fmt.Fprintf(&b, "%-14s %8s %8s %10s %10s  %s\n", "request", "ok", "per s", "p50", "p99", "errors")
	for _, k := range sum.Kinds {
		var errs []string
		for _, c := range sortedKeys(k.Errors) {
			errs = append(errs, fmt.Sprintf("%s=%d", c, k.Errors[c]))
		}
		fmt.Fprintf(&b, "%-14s %8d %8.1f %10s %10s  %s\n", k.Kind, k.OK, k.PerSec, round(k.P50), round(k.P99), strings.Join(errs, " "))
	}
	return b.String()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
