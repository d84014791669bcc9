package ingest

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"time"
)

// Limits of the out-of-order sequence numbers remembered per source. Past
// them the source is reported as broken instead of growing without limit.
const (
	// MaxPending bounds how many arrived sequence numbers may wait above the
	// high-water mark (Kafka partitions interleave a source's events; under
	// load tens of thousands wait, so this is far above normal).
	MaxPending = 1_000_000
	// MaxPendingSpan bounds how far above the high-water mark a sequence
	// number may be (the bitmap's size: 2 MiB).
	MaxPendingSpan = 1 << 24
)

// sourceKey names an event source: a registry's component.
type sourceKey struct{ registry, source string }

// progress tracks which sequence numbers of one source have arrived: every
// one up to hwm, and above it those whose bit is set in a bitmap. A bitmap
// because arrivals above the mark are dense (partitions interleave) and
// are rewritten by every batch: one bit each instead of eight bytes.
type progress struct {
	hwm        int64 // every seq <= hwm has arrived
	maxSeen    int64
	base       int64    // sequence number of bit 0 of words; base <= hwm+1
	words      []uint64 // arrived sequence numbers above hwm
	count      int      // bits set in words
	overflow   int64    // a sequence number beyond MaxPendingSpan, refused (0: none)
	hwmMovedAt time.Time
}

func newProgress(hwm, maxSeen int64, movedAt time.Time) *progress {
	return &progress{hwm: hwm, maxSeen: maxSeen, base: hwm + 1, hwmMovedAt: movedAt}
}

// loadProgress restores a tracker from its stored form (the bitmap, plus
// the sequence numbers of the legacy array column).
func loadProgress(hwm, maxSeen, base int64, bitmap []byte, legacy []int64, movedAt time.Time) *progress {
	p := newProgress(hwm, maxSeen, movedAt)
	if len(bitmap) > 0 && base <= hwm+1 {
		p.base = base
		p.words = make([]uint64, (len(bitmap)+7)/8)
		var w [8]byte
		for i := range p.words {
			n := copy(w[:], bitmap[8*i:])
			clear(w[n:])
			p.words[i] = binary.LittleEndian.Uint64(w[:])
			p.count += bits.OnesCount64(p.words[i])
		}
		// Bits at or below the mark are stale: clear them.
		for s := p.base; s <= min(hwm, p.base+64*int64(len(p.words))-1); s++ {
			if p.has(s) {
				p.unset(s)
			}
		}
		p.trim()
	}
	for _, s := range legacy {
		if s > p.hwm && !p.has(s) && s-p.base < MaxPendingSpan {
			p.set(s)
		}
	}
	return p
}

func (p *progress) clone() *progress {
	c := *p
	c.words = append([]uint64(nil), p.words...)
	return &c
}

func (p *progress) has(s int64) bool {
	i := s - p.base
	if i < 0 || i/64 >= int64(len(p.words)) {
		return false
	}
	return p.words[i/64]>>(i%64)&1 == 1
}

func (p *progress) set(s int64) {
	i := s - p.base
	for int64(len(p.words)) <= i/64 {
		p.words = append(p.words, 0)
	}
	p.words[i/64] |= 1 << (i % 64)
	p.count++
}

func (p *progress) unset(s int64) {
	i := s - p.base
	p.words[i/64] &^= 1 << (i % 64)
	p.count--
}

// trim drops the words wholly at or below the high-water mark.
func (p *progress) trim() {
	k := (p.hwm + 1 - p.base) / 64
	if k <= 0 {
		return
	}
	if k >= int64(len(p.words)) {
		p.words = p.words[:0]
		p.base = p.hwm + 1
		return
	}
	p.words = append(p.words[:0], p.words[k:]...)
	p.base += 64 * k
}

// observe records seq and advances the high-water mark over every
// contiguous arrival. It reports whether seq was new for this tracker. A
// seq more than MaxPendingSpan above the mark is not recorded; overflow
// says so.
func (p *progress) observe(seq int64, now time.Time) bool {
	if seq <= p.hwm || p.has(seq) {
		return false
	}
	if seq != p.hwm+1 {
		if seq-p.base >= MaxPendingSpan {
			p.overflow = seq
			return false
		}
		p.maxSeen = max(p.maxSeen, seq)
		p.set(seq)
		return true
	}
	p.maxSeen = max(p.maxSeen, seq)
	p.hwm = seq
	for p.has(p.hwm + 1) {
		p.unset(p.hwm + 1)
		p.hwm++
	}
	p.trim()
	p.hwmMovedAt = now
	return true
}

// gap returns the first missing range (from, to inclusive), or ok=false.
func (p *progress) gap() (from, to int64, ok bool) {
	for i, w := range p.words {
		if w != 0 {
			lowest := p.base + int64(64*i+bits.TrailingZeros64(w))
			return p.hwm + 1, lowest - 1, true
		}
	}
	return 0, 0, false
}

// bitmap is the stored form of the words (little-endian, trailing zero
// words dropped).
func (p *progress) bitmap() []byte {
	n := len(p.words)
	for n > 0 && p.words[n-1] == 0 {
		n--
	}
	out := make([]byte, 8*n)
	for i, w := range p.words[:n] {
		binary.LittleEndian.PutUint64(out[8*i:], w)
	}
	return out
}

// pendingSorted lists the arrived sequence numbers above the mark.
func (p *progress) pendingSorted() []int64 {
	out := make([]int64, 0, p.count)
	for i, w := range p.words {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, p.base+int64(64*i+b))
			w &= w - 1
		}
	}
	return out
}

// pendingCount counts the set bits of a stored bitmap.
func pendingCount(bitmap []byte) int {
	n := 0
	for _, b := range bitmap {
		n += bits.OnesCount8(b)
	}
	return n
}

// merged returns a tracker holding the arrivals of both p and o (neither
// is changed). Two Appliers of one frame (members of one consumer group)
// each see only their partitions' arrivals; merging the stored progress
// into their own before writing keeps either from erasing the other's.
func (p *progress) merged(o *progress) *progress {
	hi, lo := p, o
	if o.hwm > p.hwm {
		hi, lo = o, p
	}
	latest := p.hwmMovedAt
	if o.hwmMovedAt.After(latest) {
		latest = o.hwmMovedAt
	}
	m := hi.clone()
	m.maxSeen = max(p.maxSeen, o.maxSeen)
	if p.hwm == o.hwm {
		m.hwmMovedAt = latest
	}
	for _, s := range lo.pendingSorted() {
		m.observe(s, latest)
	}
	return m
}

// sameAs reports whether p and o record the same arrivals.
func (p *progress) sameAs(o *progress) bool {
	if p.hwm != o.hwm || p.count != o.count {
		return false
	}
	if p.count == 0 {
		return true
	}
	return p.base == o.base && slices.Equal(trimmedWords(p.words), trimmedWords(o.words))
}

func trimmedWords(w []uint64) []uint64 {
	n := len(w)
	for n > 0 && w[n-1] == 0 {
		n--
	}
	return w[:n]
}
