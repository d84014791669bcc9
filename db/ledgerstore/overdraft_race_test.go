package ledgerstore_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// TestOverdraftRaceAcrossPaths makes every path that spends an available
// balance compete at once for the last units of one: intra-registry
// transfers through the group committer (optimistic batches, revalidated
// under lock), transfers in a transaction of their own, holds,
// cross-registry acceptances (single and batched) and stakes. Together
// they ask for about three times what the sender has. Exactly an affordable
// set must succeed: the successes fit in the balance, every refusal is
// InsufficientFunds, and nothing was refused that the balance left at the
// end could still pay (spending only lowers it, so a refusal means the
// request was larger than what remained). Every ledger invariant holds
// afterwards.
func TestOverdraftRaceAcrossPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{realClock: true})
	gc := e.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{Workers: 2})
	t.Cleanup(gc.Close)
	// Rounds, each with a sender of its own, so that different paths get
	// to win: in some the sender can pay about a third of what is asked
	// (many refusals on every path), in the others all but a few units.
	for round := range 6 {
		overdraftRound(t, e, gc, round, round%2 == 0)
	}
	e.checkInvariants()
	e.xferInvariants()
}

func overdraftRound(t *testing.T, e *env, gc *ledgerstore.GroupCommitter, round int, third bool) {
	hour := time.Now().Add(time.Hour)

	type kind int
	const (
		groupTransfer kind = iota
		singleTransfer
		hold
		accept
		acceptBatch
		stake
		kinds
	)
	names := [kinds]string{"group transfer", "transfer", "hold", "cross-registry accept", "batched accept", "stake"}
	type attempt struct {
		kind   kind
		amount int64
		err    error
	}
	// Amounts of 10-15 AVT and a few units (the minimum stake is 10 AVT),
	// spread over the paths. The sender has a third of their sum, or their
	// sum less a few units (less than any one request: every request but
	// one can be paid).
	var attempts []*attempt
	var asked int64
	for i := range 30 {
		k := kind(i % int(kinds))
		a := &attempt{kind: k, amount: staking.MinStakeUnits + int64(i*7%6)*avt + int64(i)}
		attempts = append(attempts, a)
		asked += a.amount
	}
	short := int64(3)
	if third {
		short = asked - asked/3
	}
	initial := asked - short
	alice, bob := e.agent(initial), e.agent(0)
	var batch []*attempt // the batched accepts go in one call
	for _, a := range attempts {
		if a.kind == acceptBatch {
			batch = append(batch, a)
		}
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); <-start; f() }()
	}
	spend := func(k kind, amount int64, key string) error {
		var err error
		switch k {
		case groupTransfer:
			_, err = gc.Transfer(e.ctx, ledgerstore.TransferRequest{From: alice, To: bob, AmountUnits: amount, IdempotencyKey: key})
		case singleTransfer:
			_, err = e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: alice, To: bob, AmountUnits: amount, IdempotencyKey: key})
		case hold:
			_, err = e.store.PlaceHold(e.ctx, ledgerstore.HoldRequest{From: alice, To: bob, AmountUnits: amount, ExpiresAt: hour, IdempotencyKey: key})
		case accept:
			_, err = e.store.BeginXfer(e.ctx, ledgerstore.XferRequest{From: alice, To: agentID(), Target: "beta-main", AmountUnits: amount, IdempotencyKey: key})
		case acceptBatch:
			var res []ledgerstore.XferBegun
			res, err = e.store.BeginXfers(e.ctx, []ledgerstore.XferRequest{{From: alice, To: agentID(), Target: "beta-main", AmountUnits: amount, IdempotencyKey: key}})
			if err == nil {
				err = res[0].Err
			}
		case stake:
			_, err = e.store.Stake(e.ctx, ledgerstore.StakeRequest{Owner: alice, Tier: "flexible", AmountUnits: amount, IdempotencyKey: key})
		}
		return err
	}
	for i, a := range attempts {
		if a.kind != acceptBatch {
			run(func() { a.err = spend(a.kind, a.amount, fmt.Sprintf("race-%d-%d", round, i)) })
		}
	}
	run(func() {
		reqs := make([]ledgerstore.XferRequest, len(batch))
		for i, a := range batch {
			reqs[i] = ledgerstore.XferRequest{From: alice, To: agentID(), Target: "beta-main", AmountUnits: a.amount, IdempotencyKey: fmt.Sprintf("race-batch-%d", i)}
		}
		res, err := e.store.BeginXfers(e.ctx, reqs)
		require.NoError(t, err)
		for i, r := range res {
			batch[i].err = r.Err
		}
	})
	close(start)
	wg.Wait()

	var spent, transferred, held, staked int64
	var ok [kinds]int
	var refused []*attempt
	for _, a := range attempts {
		if a.err != nil {
			require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(a.err), "%s of %d: the only refusal is insufficient funds: %v", names[a.kind], a.amount, a.err)
			refused = append(refused, a)
			continue
		}
		ok[a.kind]++
		spent += a.amount
		switch a.kind {
		case groupTransfer, singleTransfer:
			transferred += a.amount
		case hold, accept, acceptBatch:
			held += a.amount
		case stake:
			staked += a.amount
		}
	}
	t.Logf("round %d: successes by path %v; spent %d of %d", round, ok, spent, initial)
	require.LessOrEqual(t, spent, initial, "the successes fit in the balance")
	require.NotEmpty(t, refused, "more was asked than the balance")
	left := initial - spent
	for _, a := range refused {
		// Spending only lowers the balance: a request refused for lack
		// of funds cannot fit in what is left at the end.
		require.Less(t, left, a.amount, "%s of %d refused, yet %d are left", names[a.kind], a.amount, left)
	}
	if !third {
		// When a request is refused, what is left (< its amount) exceeds
		// by short units all the requests not yet decided: they all fit.
		// So exactly one is refused, whatever the interleaving; a second
		// refusal could have been paid.
		require.Len(t, refused, 1, "exactly one request is refused, for the last units")
		require.Equal(t, refused[0].amount-short, left, "the refused %s finds its amount less %d units", names[refused[0].kind], short)
	}

	// The sender's buckets are exactly the successes.
	units, h := e.balance(alice)
	require.Equal(t, initial-transferred-staked, units)
	require.Equal(t, held, h)
	b, err := e.store.Balances(e.ctx, alice)
	require.NoError(t, err)
	require.Equal(t, left, b.AvailableUnits)
	var stakedUnits int64
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT coalesce(sum(units), 0)::bigint FROM balances WHERE account_id = $1 AND bucket = $2`,
		alice, ledger.BucketStaked).Scan(&stakedUnits))
	require.Equal(t, staked, stakedUnits)

	// What is left is really there, to the unit: one path (another each
	// round) spends it all, and then not one unit more can be reserved.
	last := kind(round % int(kinds))
	switch {
	case last == stake && left < staking.MinStakeUnits,
		(last == groupTransfer || last == singleTransfer) && left < 2: // the fee would take it all
		last = hold
	}
	if left > 0 {
		require.NoError(t, spend(last, left, fmt.Sprintf("last-%d", round)), "%s of the last %d units", names[last], left)
	}
	err = spend(hold, 1, fmt.Sprintf("after-%d", round))
	require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(err), "nothing is left: %v", err)
}
