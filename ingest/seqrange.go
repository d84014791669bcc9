package ingest

import (
	"fmt"
	"time"
)

// attributable reports whether d counts for its source's progress: a
// sequence number of a record shown to come from the source it names.
func attributable(d *decoded) bool {
	return d.seq > 0 && !d.unattributed && d.env.Registry != "" && d.env.Source != ""
}

// quarantineOutOfRange quarantines the records whose sequence number their
// source's progress cannot track — more than MaxPendingSpan above its
// first missing number, or one more than MaxPending numbers waiting above
// its high-water mark — and reports whether it quarantined any. Such a
// record used to fail its whole batch, and the consumer, fetching it
// again, stopped there for good.
//
// It judges against the committed progress. Batches still in flight only
// move the marks up, which can bring a number into range, never out of
// it; they can add waiting numbers, though: then writeBatch refuses the
// batch once, and its redelivery is judged here again.
func (a *Applier) quarantineOutOfRange(items []decoded) bool {
	type span struct {
		max int64
		n   int
	}
	spans := map[sourceKey]*span{}
	for i := range items {
		d := &items[i]
		if !attributable(d) {
			continue
		}
		k := sourceKey{d.env.Registry, d.env.Source}
		s := spans[k]
		if s == nil {
			s = &span{}
			spans[k] = s
		}
		s.max, s.n = max(s.max, d.seq), s.n+1
	}
	a.progMu.RLock()
	defer a.progMu.RUnlock()
	changed := false
	for k, s := range spans {
		p := a.progress[k]
		if p == nil {
			p = newProgress(0, 0, time.Time{})
		}
		if s.max-p.base < MaxPendingSpan && p.count+s.n <= MaxPending {
			continue // every number of the batch fits, wherever it lands
		}
		sim := p.clone()
		for i := range items {
			d := &items[i]
			if !attributable(d) || d.env.Registry != k.registry || d.env.Source != k.source {
				continue
			}
			sim.observe(d.seq, time.Time{})
			switch {
			case sim.overflow != 0:
				sim.overflow = 0
				d.reason = fmt.Sprintf("sequence number out of range: %d is %d or more above the first missing number %d of %s/%s",
					d.seq, MaxPendingSpan, sim.hwm+1, k.registry, k.source)
			case sim.count > MaxPending && sim.has(d.seq):
				sim.unset(d.seq)
				d.reason = fmt.Sprintf("sequence number out of range: %d would make more than %d numbers of %s/%s wait above the high-water mark %d",
					d.seq, MaxPending, k.registry, k.source, sim.hwm)
			default:
				continue
			}
			d.final, d.unattributed, changed = true, true, true
		}
	}
	return changed
}
