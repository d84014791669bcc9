package node_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/workflows"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// TestCrossRegistrySettlementStartedByHand starts CrossRegistrySettlement
// with the Temporal client, as anyone who may start workflows in the
// namespace could, naming real transfers with forged facts. Whatever the
// input says, nothing moves beyond the real transfers, on either TEG:
//
//   - a real pending transfer with an inflated amount and another
//     receiver settles as the source recorded it (the real receiver gets
//     the real amount net of fee; the forged one nothing);
//   - a transfer addressed to another registry is refused: the workflow
//     fails, nothing is prepared, the transfer stays pending with its
//     hold;
//   - a target already holding a prepare with other terms for the
//     transfer's ID (what such a workflow left before the terms were
//     checked) gets no commit: the decision aborts the transfer with the
//     mismatch recorded (event, metric), the sender's funds come back.
func TestCrossRegistrySettlementStartedByHand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startXferPair(t)
	mallory := "did:theprotocol:" + uuid.NewString()
	_, _, err := p.dst.Ledger.OpenAccount(ctx, mallory, ledger.KindAgent)
	require.NoError(t, err)
	transitOut := ledgerstore.TransitAccount(p.dstReg.ID) // on the source
	transitIn := ledgerstore.TransitAccount(p.srcReg.ID)  // on the target
	// pending accepts a transfer on the source without its settlement
	// (the API would start one at once): a real pending transfer ID.
	pending := func(key, target string, amount int64) ledgerstore.Xfer {
		x, err := p.src.Ledger.BeginXfer(ctx, ledgerstore.XferRequest{From: p.alice, To: p.bob, Target: target, AmountUnits: amount, IdempotencyKey: key})
		require.NoError(t, err)
		require.Equal(t, xferstate.Pending, x.Status)
		return x
	}
	forge := func(x ledgerstore.Xfer) workflows.SettlementInput {
		return workflows.SettlementInput{Source: p.srcReg.ID, Target: p.dstReg.ID, CompensationAttempts: 1, Transfers: []activities.XferItem{
			{ID: x.ID, From: p.alice, To: mallory, AmountUnits: 500 * avt},
		}}
	}
	start := func(in workflows.SettlementInput) client.WorkflowRun {
		run, err := p.src.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: "forged-" + uuid.NewString(), TaskQueue: p.srcReg.TaskQueue(), WorkflowExecutionTimeout: 2 * time.Minute,
		}, workflows.SettlementWorkflowName, in)
		require.NoError(t, err)
		return run
	}
	type books struct{ alice, aliceHeld, out, bob, mallory, in, fees int64 }
	read := func() books {
		var b books
		b.alice, b.aliceHeld = balance(t, p.src, p.alice)
		b.out, _ = balance(t, p.src, transitOut)
		b.bob, _ = balance(t, p.dst, p.bob)
		b.mallory, _ = balance(t, p.dst, mallory)
		b.in, _ = optionalBalance(t, p.dst, transitIn)
		b.fees, _ = optionalBalance(t, p.dst, ledger.AccountFeeCollector)
		return b
	}
	noEventNames := func(who string) {
		for _, n := range []*node.Node{p.src, p.dst} {
			var c int
			require.NoError(t, n.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*) FROM outbox WHERE envelope::text LIKE '%' || $1 || '%'`, who).Scan(&c))
			require.Zero(t, c, "no event on %s names %s", n.SPIFFEID, who)
		}
	}

	t.Run("inflated amount and another receiver: the recorded transfer settles, nothing more", func(t *testing.T) {
		amount := 3 * avt
		x := pending("forged-1", p.dstReg.ID, amount)
		before := read()
		var res workflows.SettlementResult
		require.NoError(t, start(forge(x)).Get(ctx, &res))
		require.Equal(t, workflows.SettlementResult{Committed: 1}, res)
		fee := (amount*50 + 9_999) / 10_000
		after := read()
		require.Equal(t, books{
			alice: before.alice - amount, aliceHeld: before.aliceHeld - amount, out: before.out + amount,
			bob: before.bob + amount - fee, mallory: before.mallory, in: before.in - amount, fees: before.fees + fee,
		}, after)
		got, err := p.src.Ledger.GetXfer(ctx, x.ID)
		require.NoError(t, err)
		require.Equal(t, xferstate.Committed, got.Status)
		// The events both TEGs wrote carry the recorded terms.
		var debit, credit int64
		var creditTo string
		require.NoError(t, p.src.Pools[db.RoleTEG].QueryRow(ctx, `SELECT (envelope->'payload'->>'amount_units')::bigint FROM outbox WHERE idempotency_key = $1`,
			"xfer-"+x.ID.String()+"-debit").Scan(&debit))
		require.NoError(t, p.dst.Pools[db.RoleTEG].QueryRow(ctx, `SELECT (envelope->'payload'->>'amount_units')::bigint, envelope->'payload'->>'to' FROM outbox WHERE idempotency_key = $1`,
			"xfer-"+x.ID.String()+"-credit").Scan(&credit, &creditTo))
		require.Equal(t, []any{amount, amount, p.bob}, []any{debit, credit, creditTo})
		noEventNames(mallory)
	})

	t.Run("a transfer addressed to another registry is refused", func(t *testing.T) {
		x := pending("forged-2", "xo"+strings.TrimPrefix(p.dstReg.ID, "xd"), avt)
		before := read()
		err := start(forge(x)).Get(ctx, nil)
		var ae *temporal.ApplicationError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, activities.ErrTypeXferRefused, ae.Type())
		require.Equal(t, before, read())
		got, err := p.src.Ledger.GetXfer(ctx, x.ID)
		require.NoError(t, err)
		require.Equal(t, xferstate.Pending, got.Status, "left to its own settlement")
		h, err := p.src.Ledger.GetHold(ctx, x.HoldID)
		require.NoError(t, err)
		require.Equal(t, ledgerstore.HoldActive, h.Status)
		var prepared int
		require.NoError(t, p.dst.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*) FROM xfer_prepares WHERE transfer_id = $1`, x.ID).Scan(&prepared))
		require.Zero(t, prepared)
		noEventNames(mallory)
	})

	t.Run("a target holding other terms gets no commit: aborted with the mismatch", func(t *testing.T) {
		x := pending("forged-3", p.dstReg.ID, 2*avt)
		rs, err := p.dst.Ledger.PrepareXfers(ctx, p.srcReg.ID, []ledgerstore.XferPrepareItem{{ID: x.ID, From: p.alice, To: mallory, AmountUnits: 500 * avt}})
		require.NoError(t, err)
		require.Equal(t, xferstate.Prepared, rs[0].Status)
		before := read()
		counted := mismatchCount(t, p.src)
		in := forge(x)
		in.Transfers[0].To, in.Transfers[0].AmountUnits = p.bob, 2*avt // even with honest input
		var res workflows.SettlementResult
		require.NoError(t, start(in).Get(ctx, &res))
		require.Equal(t, workflows.SettlementResult{Aborted: 1}, res)
		got, err := p.src.Ledger.GetXfer(ctx, x.ID)
		require.NoError(t, err)
		require.Equal(t, xferstate.Aborted, got.Status)
		require.True(t, strings.HasPrefix(got.Reason, xferstate.ReasonTermsMismatch), got.Reason)
		after := read()
		require.Equal(t, before.aliceHeld-2*avt, after.aliceHeld, "the hold is voided: her funds are back")
		after.aliceHeld = before.aliceHeld
		require.Equal(t, before, after, "nothing else moved on either side")
		var st string
		require.NoError(t, p.dst.Pools[db.RoleTEG].QueryRow(ctx, `SELECT status FROM xfer_prepares WHERE transfer_id = $1`, x.ID).Scan(&st))
		require.Equal(t, string(xferstate.Aborted), st, "the forged prepare is dropped")
		var reported int64
		require.NoError(t, p.src.Pools[db.RoleTEG].QueryRow(ctx, `SELECT (envelope->'payload'->'reported'->>'amount_units')::bigint FROM outbox
			WHERE event_type = 'CrossRegistryTermsMismatch' AND idempotency_key = $1`, "xfer-"+x.ID.String()+"-mismatch").Scan(&reported))
		require.Equal(t, 500*avt, reported)
		require.GreaterOrEqual(t, mismatchCount(t, p.src)-counted, 1.0, "xfer_terms_mismatch_total{side=coordinator} counted it")
	})

	p.checkEventStore()
}

// optionalBalance is balance for an account that may not exist yet (0).
func optionalBalance(t *testing.T, n *node.Node, account string) (units, held int64) {
	t.Helper()
	err := n.Pools[db.RoleTEG].QueryRow(context.Background(),
		`SELECT coalesce(sum(units), 0), coalesce(sum(held_units), 0) FROM balances WHERE account_id = $1 AND bucket = 'liquid'`, account).Scan(&units, &held)
	require.NoError(t, err, account)
	return units, held
}

// mismatchCount reads xfer_terms_mismatch_total{side="coordinator"} from
// the node's /metrics.
func mismatchCount(t *testing.T, n *node.Node) float64 {
	t.Helper()
	resp, err := http.Get(n.URL() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	prefix := fmt.Sprintf("xfer_terms_mismatch_total{side=%q} ", "coordinator")
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	require.NoError(t, sc.Err())
	return 0
}
