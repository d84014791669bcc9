package ingest

import (
	"slices"
	"time"
)

// MaxPending bounds the out-of-order sequence numbers remembered per source.
// Far more than ever seen in practice (a batch spans a few thousand); past
// it the source is reported as broken instead of growing without limit.
const MaxPending = 1_000_000

// sourceKey names an event source: a registry's component.
type sourceKey struct{ registry, source string }

// progress tracks which sequence numbers of one source have arrived.
type progress struct {
	hwm        int64 // every seq <= hwm has arrived
	maxSeen    int64
	pending    map[int64]struct{} // arrived, > hwm
	hwmMovedAt time.Time
	dirty      bool
}

func newProgress(hwm, maxSeen int64, pending []int64, movedAt time.Time) *progress {
	p := &progress{hwm: hwm, maxSeen: maxSeen, pending: make(map[int64]struct{}, len(pending)), hwmMovedAt: movedAt}
	for _, s := range pending {
		p.pending[s] = struct{}{}
	}
	return p
}

// observe records seq and advances the high-water mark over every
// contiguous arrival. It reports whether seq was new for this tracker.
func (p *progress) observe(seq int64, now time.Time) bool {
	if seq <= p.hwm {
		return false
	}
	if _, dup := p.pending[seq]; dup {
		return false
	}
	p.dirty = true
	p.maxSeen = max(p.maxSeen, seq)
	if seq != p.hwm+1 {
		p.pending[seq] = struct{}{}
		return true
	}
	p.hwm = seq
	for {
		if _, ok := p.pending[p.hwm+1]; !ok {
			break
		}
		delete(p.pending, p.hwm+1)
		p.hwm++
	}
	p.hwmMovedAt = now
	return true
}

// gap returns the first missing range (from, to inclusive), or ok=false.
func (p *progress) gap() (from, to int64, ok bool) {
	if len(p.pending) == 0 {
		return 0, 0, false
	}
	lowest := int64(-1)
	for s := range p.pending {
		if lowest < 0 || s < lowest {
			lowest = s
		}
	}
	return p.hwm + 1, lowest - 1, true
}

func (p *progress) pendingSorted() []int64 {
	out := make([]int64, 0, len(p.pending))
	for s := range p.pending {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}
