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
