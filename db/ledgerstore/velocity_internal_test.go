package ledgerstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// The velocity fee of a pair must not depend on how its transfers were
// grouped: the same transfers in one batch, or split over two batches that
// are in flight at the same time, pay exactly the rates (and fees) they pay
// when applied one after another. The two-batch case forces the worst
// interleaving: both batches have read their counts and written their rows
// before either takes its locks. Not parallel: it sets a package hook.
func TestVelocityFeeIndependentOfBatching(t *testing.T) {
	tdb := testenv.NewDB(t, db.RoleTEG)
	clock := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s := New(tdb.Pool, Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true, Now: func() time.Time { return clock }})
	ctx := context.Background()
	_, err := s.Genesis(ctx, 1000*avtUnits)
	require.NoError(t, err)
	open := func(units int64) string {
		id := "did:theprotocol:" + uuid.NewString()
		_, _, err := s.OpenAccount(ctx, id, ledger.KindAgent)
		require.NoError(t, err)
		if units > 0 {
			_, err = s.Grant(ctx, SupplyRequest{To: id, AmountUnits: units, Reason: "t", Actor: "admin:t", IdempotencyKey: "g-" + id[16:]})
			require.NoError(t, err)
		}
		return id
	}

	// 16 transfers cross two steps of the curve (10 × 50, 5 × 100, 1 × 150
	// bps); amounts differ so that each rate maps to a distinct fee.
	const n = 16
	amount := func(i int) int64 { return 1_000_001 + int64(i)*7_777 }
	reqs := func(from, to, prefix string) []*xfer {
		items := make([]*xfer, n)
		for i := range items {
			items[i] = &xfer{req: TransferRequest{From: from, To: to, AmountUnits: amount(i), IdempotencyKey: fmt.Sprintf("%s-%d", prefix, i)}}
		}
		return items
	}
	type outcome struct{ bps, fees []int64 }
	collect := func(items []*xfer) outcome {
		var o outcome
		for _, it := range items {
			require.NoError(t, it.err)
			require.False(t, it.res.Replayed)
			o.bps = append(o.bps, it.res.FeeBps)
			o.fees = append(o.fees, it.res.FeeUnits)
		}
		return o
	}

	// Sequential reference: one transaction per transfer, in order.
	seq := reqs(open(10*avtUnits), open(0), "seq")
	for _, it := range seq {
		s.runSingle(ctx, it)
	}
	want := collect(seq)
	var curve []int64
	for i := range n {
		curve = append(curve, ledger.FeeBpsForVelocity(i))
	}
	require.Equal(t, curve, want.bps, "the sequential reference follows the fee curve")

	// One batch: the count advances transfer by transfer inside it.
	one := reqs(open(10*avtUnits), open(0), "one")
	require.NoError(t, s.runBatch(ctx, one))
	require.Equal(t, want, collect(one), "one batch pays what the sequence pays")

	// Two concurrent batches of the same pair, 8 transfers each. Both must
	// reach the point before their locks before either goes on; a batch that
	// is rerun with locks first does not come back through the hook.
	from, to := open(10*avtUnits), open(0)
	both := reqs(from, to, "two")
	first, second := both[:n/2], both[n/2:]
	var arrived sync.WaitGroup
	arrived.Add(2)
	var mu sync.Mutex
	seen := 0
	testHookBeforeRevalidate = func() {
		mu.Lock()
		seen++
		mine := seen
		mu.Unlock()
		if mine <= 2 {
			arrived.Done()
			waitTimeout(t, &arrived, 30*time.Second)
		}
	}
	defer func() { testHookBeforeRevalidate = nil }()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, batch := range [][]*xfer{first, second} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.runBatch(ctx, batch) }()
	}
	wg.Wait()
	testHookBeforeRevalidate = nil
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.GreaterOrEqual(t, seen, 2, "both batches reached their locks after writing their rows")

	// Whichever batch committed first is the first half of the sequence:
	// in that order every transfer must pay the sequence's rate and the fee
	// that rate gives its amount.
	order := slices.Concat(first, second)
	if slices.Equal(collect(second).bps, want.bps[:n/2]) {
		order = slices.Concat(second, first)
	}
	for pos, it := range order {
		fee, err := ledger.TransferFee(it.req.AmountUnits, curve[pos])
		require.NoError(t, err)
		require.Equal(t, curve[pos], it.res.FeeBps, "transfer %s is number %d of the pair's sequence", it.req.IdempotencyKey, pos)
		require.Equal(t, fee.FeeUnits, it.res.FeeUnits, "fee of %s", it.req.IdempotencyKey)
	}
	stored := func(from, to string) []int64 {
		var out []int64
		rows, err := tdb.Pool.Query(ctx, `SELECT fee_bps FROM transfers WHERE sender = $1 AND receiver = $2 ORDER BY fee_bps`, from, to)
		require.NoError(t, err)
		for rows.Next() {
			var b int64
			require.NoError(t, rows.Scan(&b))
			out = append(out, b)
		}
		require.NoError(t, rows.Err())
		return out
	}
	require.Equal(t, curve, stored(from, to), "the committed rows carry the sequence's rates")

	// The committer itself, two workers and small batches, the transfers
	// submitted at once: however they were grouped, the pair pays the
	// curve, each transfer the fee of its rate.
	gc := s.NewGroupCommitter(GroupCommitOptions{Workers: 2, MaxBatch: 3})
	defer gc.Close()
	from, to = open(10*avtUnits), open(0)
	res := make([]Transfer, n)
	errs = make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = gc.Transfer(ctx, TransferRequest{From: from, To: to, AmountUnits: amount(i), IdempotencyKey: fmt.Sprintf("gc-%d", i)})
		}()
	}
	wg.Wait()
	var gcBps []int64
	for i := range n {
		require.NoError(t, errs[i])
		fee, err := ledger.TransferFee(amount(i), res[i].FeeBps)
		require.NoError(t, err)
		require.Equal(t, fee.FeeUnits, res[i].FeeUnits)
		gcBps = append(gcBps, res[i].FeeBps)
	}
	slices.Sort(gcBps)
	require.Equal(t, curve, gcBps, "the group committer's batches pay the curve")
	require.Equal(t, curve, stored(from, to))
}

func waitTimeout(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Errorf("timed out waiting for the other batch")
	}
}
