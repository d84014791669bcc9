package ledgerstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
)

// A batch mixing good transfers with insufficient-funds, unknown-receiver
// and too-small ones: every good transfer commits, every bad one fails alone.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{realClock: true})
	rich, poor, sink := e.agent(1000*avt), e.agent(avt), e.agent(0)
	gc := e.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{MaxBatch: 64, Workers: 1})
	defer gc.Close()

	type outcome struct {
		want apperr.Code
		got  error
	}
	const n = 200
	results := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ledgerstore.TransferRequest{From: rich, To: sink, AmountUnits: avt, IdempotencyKey: key("g", i)}
			want := apperr.Code("")
			switch i % 5 {
			case 1:
				r.From, r.AmountUnits, want = poor, 2*avt, apperr.InsufficientFunds
			case 2:
				r.To, want = agentID(), apperr.NotFound
			case 3:
				r.AmountUnits, want = 1, apperr.Invalid
			}
			_, err := gc.Transfer(e.ctx, r)
			results[i] = outcome{want, err}
		}()
	}
	wg.Wait()
	for i, r := range results {
		require.Equal(t, r.want, apperr.CodeOf(r.got), "transfer %d: %v", i, r.got)
	}
	require.Equal(t, n*2/5, e.count(`SELECT count(*) FROM transfers`))
	u, _ := e.balance(poor)
	require.Equal(t, avt, u)
	e.checkInvariants()
}

// Concurrent duplicates with one key apply once, through both paths.
func TestConcurrentDuplicatesApplyOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{realClock: true})
	a, b := e.agent(100*avt), e.agent(0)
	gc := e.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{Workers: 4, MaxBatch: 8})
	defer gc.Close()
	req := ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 3 * avt, IdempotencyKey: "dup"}
	const n = 40
	ids := make([]uuid.UUID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tr ledgerstore.Transfer
			var err error
			if i%2 == 0 {
				tr, err = gc.Transfer(e.ctx, req)
			} else {
				tr, err = e.store.Transfer(e.ctx, req)
			}
			ids[i], errs[i] = tr.ID, err
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, ids[0], ids[i])
	}
	require.Equal(t, 1, e.count(`SELECT count(*) FROM transfers`))
	u, _ := e.balance(a)
	require.Equal(t, 97*avt, u)

	// Holds too.
	hr := ledgerstore.HoldRequest{From: a, To: b, AmountUnits: avt, ExpiresAt: time.Now().Add(time.Hour), IdempotencyKey: "hdup"}
	holdIDs := make([]uuid.UUID, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := e.store.PlaceHold(e.ctx, hr)
			errs[i], holdIDs[i] = err, h.ID
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, holdIDs[0], holdIDs[i])
	}
	require.Equal(t, 1, e.count(`SELECT count(*) FROM holds`))
	e.checkInvariants()
}

// Randomized: many goroutines issue random transfers (group-committed and
// direct), holds, posts, voids, sweeps and grants, including ones that must
// fail; afterwards every invariant holds exactly and every successful
// operation has its events.
func TestRandomizedConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{realClock: true})
	const accounts = 12
	ids := make([]string, accounts)
	for i := range ids {
		ids[i] = e.agent(int64(rand.IntN(50)+1) * avt)
	}
	gc := e.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{MaxBatch: 32, Workers: 2})
	defer gc.Close()

	dur := 3 * time.Second
	if testing.Short() {
		dur = time.Second
	}
	ctx, cancel := context.WithTimeout(e.ctx, dur)
	defer cancel()

	var (
		mu     sync.Mutex
		holds  []uuid.UUID
		ok     = map[string]*atomic.Int64{}
		failed atomic.Int64
	)
	for _, k := range []string{"transfer", "hold", "post", "void", "sweep", "grant"} {
		ok[k] = &atomic.Int64{}
	}
	var seq atomic.Int64
	var wg sync.WaitGroup
	for w := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				from, to := ids[rng.IntN(accounts)], ids[rng.IntN(accounts)]
				if rng.IntN(20) == 0 {
					to = agentID() // unknown receiver
				}
				amount := int64(rng.IntN(5*int(avt))) + 1 // sometimes 1 unit (too small), often more than available
				k := fmt.Sprintf("r%d", seq.Add(1))
				var err error
				op := ""
				switch p := rng.IntN(100); {
				case p < 55:
					op = "transfer"
					_, err = gc.Transfer(e.ctx, ledgerstore.TransferRequest{From: from, To: to, AmountUnits: amount, IdempotencyKey: k})
				case p < 65:
					op = "transfer"
					_, err = e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: from, To: to, AmountUnits: amount, IdempotencyKey: k})
				case p < 78:
					op = "hold"
					var h ledgerstore.Hold
					ttl := time.Duration(rng.IntN(1500)+1) * time.Millisecond
					h, err = e.store.PlaceHold(e.ctx, ledgerstore.HoldRequest{From: from, To: to, AmountUnits: amount, ExpiresAt: time.Now().Add(ttl), IdempotencyKey: k})
					if err == nil {
						mu.Lock()
						holds = append(holds, h.ID)
						mu.Unlock()
					}
				case p < 90:
					mu.Lock()
					if len(holds) == 0 {
						mu.Unlock()
						continue
					}
					id := holds[rng.IntN(len(holds))]
					mu.Unlock()
					if rng.IntN(2) == 0 {
						op = "post"
						var h ledgerstore.Hold
						h, _, err = e.store.PostHold(e.ctx, id, int64(rng.IntN(int(avt))))
						if err == nil && h.Replayed {
							op = ""
						}
					} else {
						op = "void"
						var h ledgerstore.Hold
						h, err = e.store.VoidHold(e.ctx, id)
						if err == nil && h.Replayed {
							op = ""
						}
					}
				case p < 95:
					var n int
					n, err = e.store.ExpireHolds(e.ctx, 50)
					if err != nil {
						t.Errorf("expire holds: %v", err)
					}
					ok["sweep"].Add(int64(n))
					continue
				default:
					op = "grant"
					_, err = e.store.Grant(e.ctx, ledgerstore.SupplyRequest{To: from, AmountUnits: amount, Reason: "random", Actor: "admin:fuzz", IdempotencyKey: k})
				}
				if err != nil {
					switch apperr.CodeOf(err) {
					case apperr.InsufficientFunds, apperr.NotFound, apperr.Invalid, apperr.FailedPrecondition, apperr.Conflict:
						failed.Add(1)
					default:
						t.Errorf("%s: unexpected error: %v", op, err)
						return
					}
					continue
				}
				if op != "" {
					ok[op].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	// Let every hold expire and sweep them all.
	time.Sleep(1600 * time.Millisecond)
	n, err := e.store.SweepExpiredHolds(e.ctx)
	require.NoError(t, err)
	ok["sweep"].Add(int64(n))
	t.Logf("ok: transfer=%d hold=%d post=%d void=%d expired=%d grant=%d; expected failures=%d",
		ok["transfer"].Load(), ok["hold"].Load(), ok["post"].Load(), ok["void"].Load(), ok["sweep"].Load(), ok["grant"].Load(), failed.Load())
	require.Positive(t, ok["transfer"].Load())
	require.Positive(t, failed.Load())

	// Every successful op is in the database exactly once.
	require.EqualValues(t, ok["transfer"].Load()+ok["post"].Load(), e.count(`SELECT count(*) FROM transfers`))
	require.EqualValues(t, ok["hold"].Load(), e.count(`SELECT count(*) FROM holds`))
	require.EqualValues(t, ok["post"].Load(), e.count(`SELECT count(*) FROM holds WHERE status = 'posted'`))
	require.EqualValues(t, ok["void"].Load(), e.count(`SELECT count(*) FROM holds WHERE status = 'voided'`))
	require.EqualValues(t, ok["sweep"].Load(), e.count(`SELECT count(*) FROM holds WHERE status = 'expired'`))
	require.Zero(t, e.count(`SELECT count(*) FROM holds WHERE status = 'active'`))
	require.EqualValues(t, ok["grant"].Load()+accounts, e.count(`SELECT count(*) FROM supply_operations WHERE kind = 'grant'`))
	e.checkInvariants()
}
