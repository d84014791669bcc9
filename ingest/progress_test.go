package ingest

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProgressAdvancesOverContiguousArrivals(t *testing.T) {
	t0 := time.Unix(100, 0)
	p := newProgress(0, 0, t0)
	require.True(t, p.observe(2, t0))
	require.True(t, p.observe(4, t0))
	require.EqualValues(t, 0, p.hwm, "1 is missing")
	from, to, ok := p.gap()
	require.True(t, ok)
	require.Equal(t, [2]int64{1, 1}, [2]int64{from, to})

	t1 := t0.Add(time.Second)
	require.True(t, p.observe(1, t1))
	require.EqualValues(t, 2, p.hwm)
	require.Equal(t, t1, p.hwmMovedAt)
	from, to, ok = p.gap()
	require.True(t, ok)
	require.Equal(t, [2]int64{3, 3}, [2]int64{from, to})

	require.False(t, p.observe(2, t1), "a duplicate below the mark")
	require.False(t, p.observe(4, t1), "a duplicate still pending")
	require.True(t, p.observe(3, t1))
	require.EqualValues(t, 4, p.hwm)
	require.EqualValues(t, 4, p.maxSeen)
	_, _, ok = p.gap()
	require.False(t, ok)
	require.Empty(t, p.pendingSorted())
}

func TestProgressBitmapRoundTripsAndBounds(t *testing.T) {
	t0 := time.Unix(100, 0)
	p := newProgress(10, 10, t0)
	// Interleaved arrivals, as from several partitions: every third
	// sequence number across many words, plus a far one.
	var want []int64
	for s := int64(12); s < 5000; s += 3 {
		require.True(t, p.observe(s, t0))
		want = append(want, s)
	}
	require.True(t, p.observe(100_000, t0))
	want = append(want, 100_000)
	require.Equal(t, want, p.pendingSorted())
	require.Equal(t, len(want), p.count)

	// Stored and loaded (with a legacy array entry), it is the same set.
	q := loadProgress(p.hwm, p.maxSeen, p.base, p.bitmap(), []int64{7, 100_001}, t0)
	require.Equal(t, append(slices.Clone(want), 100_001), q.pendingSorted(), "legacy entries above the mark join, those below are dropped")
	require.Equal(t, pendingCount(p.bitmap()), p.count)

	// Filling the holes advances the mark over everything contiguous and
	// drops the words below it.
	for s := int64(11); s < 5000; s++ {
		if s%3 != 0 {
			p.observe(s, t0)
		}
	}
	require.EqualValues(t, 4999, p.hwm)
	require.Equal(t, []int64{100_000}, p.pendingSorted())
	from, to, ok := p.gap()
	require.True(t, ok)
	require.Equal(t, [2]int64{5000, 99_999}, [2]int64{from, to})
	require.LessOrEqual(t, len(p.words), (100_000-5000)/64+2, "words below the mark were dropped")

	// A clone is independent.
	c := p.clone()
	c.observe(5000, t0)
	require.EqualValues(t, 4999, p.hwm)
	require.EqualValues(t, 5000, c.hwm)

	// Too far above the mark: refused, not allocated.
	require.False(t, p.observe(p.hwm+MaxPendingSpan+10, t0))
	require.NotZero(t, p.overflow)
	require.Equal(t, 1, p.count)
}

func TestQualifyAndClassify(t *testing.T) {
	require.Equal(t, "did:theprotocol:x", Qualify("alpha-main", "did:theprotocol:x"))
	require.Equal(t, "alpha-main/treasury", Qualify("alpha-main", "treasury"))
	require.Equal(t, classIssuance, classify("issuance"))
	require.Equal(t, classCrossFrame, classify("xframe:beta"))
	require.Equal(t, classCirculating, classify("fee_collector"))
	require.True(t, isNative("liquid"))
	require.False(t, isNative("wrapped:beta"))
}

// Two trackers that each saw some of a source's sequence numbers (two
// consumers holding different partitions) merge into one holding all.
func TestProgressMergedHoldsBothArrivals(t *testing.T) {
	t0 := time.Unix(100, 0)
	for _, tc := range []struct {
		name      string
		a, b      []int64
		hwm       int64
		remaining []int64
	}{
		{"interleaved", []int64{1, 3, 5, 7}, []int64{2, 4, 6, 9}, 7, []int64{9}},
		{"one ahead", []int64{1, 2, 3, 4, 5, 6}, []int64{1, 2, 8}, 6, []int64{8}},
		{"disjoint above a gap", []int64{2, 3}, []int64{5}, 0, []int64{2, 3, 5}},
		{"identical", []int64{1, 2, 4}, []int64{1, 2, 4}, 2, []int64{4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newProgress(0, 0, t0), newProgress(0, 0, t0)
			for _, s := range tc.a {
				a.observe(s, t0)
			}
			for _, s := range tc.b {
				b.observe(s, t0)
			}
			aBefore, bBefore := a.clone(), b.clone()
			for _, m := range []*progress{a.merged(b), b.merged(a)} {
				require.Equal(t, tc.hwm, m.hwm)
				require.Equal(t, tc.remaining, m.pendingSorted())
				require.Equal(t, slices.Max(append(slices.Clone(tc.a), tc.b...)), m.maxSeen)
				require.Equal(t, len(tc.remaining), m.count)
			}
			require.True(t, a.sameAs(aBefore) && b.sameAs(bBefore), "merging changes neither input")
			require.Equal(t, slices.Equal(tc.a, tc.b), a.sameAs(b))
		})
	}
}

// A tracker read back from its stored form is the same as the one written:
// with one consumer, nothing is merged.
func TestProgressSameAsItsStoredForm(t *testing.T) {
	t0 := time.Unix(100, 0)
	p := newProgress(0, 0, t0)
	for _, s := range []int64{1, 2, 3, 70, 71, 200, 5000} {
		p.observe(s, t0)
	}
	back := loadProgress(p.hwm, p.maxSeen, p.base, p.bitmap(), nil, p.hwmMovedAt)
	require.True(t, p.sameAs(back))
	back.observe(4, t0)
	require.False(t, p.sameAs(back))
}
