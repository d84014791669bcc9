package ingest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProgressAdvancesOverContiguousArrivals(t *testing.T) {
	t0 := time.Unix(100, 0)
	p := newProgress(0, 0, nil, t0)
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

func TestQualifyAndClassify(t *testing.T) {
	require.Equal(t, "did:theprotocol:x", Qualify("alpha-main", "did:theprotocol:x"))
	require.Equal(t, "alpha-main/treasury", Qualify("alpha-main", "treasury"))
	require.Equal(t, classIssuance, classify("issuance"))
	require.Equal(t, classCrossFrame, classify("xframe:beta"))
	require.Equal(t, classCirculating, classify("fee_collector"))
	require.True(t, isNative("liquid"))
	require.False(t, isNative("wrapped:beta"))
}
