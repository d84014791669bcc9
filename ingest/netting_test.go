package ingest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/events"
)

func TestBalanceDeltasMatchAMapOfSums(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	b := newBalanceDeltas(0)
	want := map[balanceKey]int64{}
	for range 5000 {
		k := balanceKey{[]string{"did:a", "did:b", "alpha/fee_collector", "did:c"}[rng.IntN(4)], []string{"liquid", "staked"}[rng.IntN(2)]}
		v := rng.Int64N(2000) - 1000
		require.NoError(t, b.add(k, v))
		want[k] += v
	}
	require.Equal(t, len(want), b.len())
	var prev *balanceKey
	for _, i := range b.sorted() {
		k := b.keys[i]
		require.Equal(t, want[k], b.deltas[i], k)
		require.Equal(t, want[k], b.get(k))
		if prev != nil {
			require.Negative(t, compareBalanceKeys(*prev, k), "sorted, unique")
		}
		prev = &k
	}
	require.Zero(t, b.get(balanceKey{"did:nobody", "liquid"}))
}

func TestBalanceDeltasOverflowIsAnError(t *testing.T) {
	b := newBalanceDeltas(0)
	k := balanceKey{"did:a", "liquid"}
	require.NoError(t, b.add(k, math.MaxInt64))
	require.Error(t, b.add(k, 1))
	require.Equal(t, int64(math.MaxInt64), b.get(k), "a refused add changes nothing")
}

func TestBalanceDeltasCloneIsIndependent(t *testing.T) {
	b := newBalanceDeltas(0)
	a, c := balanceKey{"did:a", "liquid"}, balanceKey{"did:c", "liquid"}
	require.NoError(t, b.add(a, 10))
	cl := b.clone()
	require.NoError(t, cl.add(a, -4))
	require.True(t, cl.shared, "no new key: the index is still shared")
	require.NoError(t, cl.add(c, 5))
	require.False(t, cl.shared, "a new key copies the index")
	require.Equal(t, int64(10), b.get(a), "the original keeps its sums")
	require.Zero(t, b.get(c), "and its keys")
	require.Equal(t, 1, b.len())
	require.Equal(t, int64(6), cl.get(a))
	require.Equal(t, int64(5), cl.get(c))
}

func TestAccumulateQualifiesSystemAccountsPerRegistry(t *testing.T) {
	b := newBalanceDeltas(0)
	var terms auditTerms
	for _, reg := range []string{"alpha-main", "alpha-two", "alpha-main"} {
		env := events.Envelope{Registry: reg, Postings: []events.Posting{
			{Account: "did:theprotocol:1", Bucket: "liquid", Delta: -3},
			{Account: "fee_collector", Bucket: "liquid", Delta: 3},
		}}
		require.NoError(t, accumulate(&env, b, &terms, 1))
	}
	require.Equal(t, int64(6), b.get(balanceKey{"alpha-main/fee_collector", "liquid"}))
	require.Equal(t, int64(3), b.get(balanceKey{"alpha-two/fee_collector", "liquid"}))
	require.Equal(t, int64(-9), b.get(balanceKey{"did:theprotocol:1", "liquid"}))
	require.Zero(t, terms.delta())
}
