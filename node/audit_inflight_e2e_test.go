package node_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/workflows"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// TestAuditReconcilesNonZeroTermsAndMoneyInFlight drives the supply audit
// and the reconciliation with every term non-zero and money in flight,
// with the real Postgres, Temporal and Kafka: a mint and a burn reach the
// EventStore (tokens_destroyed ≠ 0), and a cross-registry transfer is
// decided (the sender debited, transit:<target> credited on the
// coordinator) while its commit keeps failing, so the saga parks in
// CommitStalled with a transit leg the target has not matched. Each term
// must then be exactly what the two TEGs hold, the checkpoints of both
// registries must reconcile with no difference, and the pair's transit
// netting must count the stalled transfer as in flight, nothing more. A
// term made wrong makes the audit fail. Once the target recovers the leg is
// matched and everything reconciles again with nothing in flight.
func TestAuditReconcilesNonZeroTermsAndMoneyInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := startReconFrame(t)
	require.NoError(t, f.main.ConnectPeer(ctx, f.esReg.ID, f.es.MTLSURL()))
	require.NoError(t, f.es.ConnectPeer(ctx, f.mainReg.ID, f.main.MTLSURL()))
	var stall atomic.Bool
	var refused atomic.Int64
	f.main.Xfer.Client.Fault = func(op, _ string, after bool) error {
		if op == "commit" && !after && stall.Load() {
			refused.Add(1)
			return errors.New("injected: the target does not answer commits")
		}
		return nil
	}
	require.Eventually(t, func() bool { return f.audit().OK }, 30*time.Second, 100*time.Millisecond, "the audit starts clean")

	// Supply changes on the mainframe: a mint and a burn (both through the
	// gate, which asks the EventStore's node), and a grant to the sender.
	admin := "admin:audit-test"
	_, err := f.main.Ledger.Mint(ctx, ledgerstore.SupplyRequest{AmountUnits: auditMinted, Reason: "audit test", Actor: admin, IdempotencyKey: "audit-mint"})
	require.NoError(t, err)
	_, err = f.main.Ledger.Burn(ctx, ledgerstore.SupplyRequest{AmountUnits: auditBurned, Reason: "audit test", Actor: admin, IdempotencyKey: "audit-burn"})
	require.NoError(t, err)
	alice := "did:theprotocol:" + uuid.NewString()
	_, _, err = f.main.Ledger.OpenAccount(ctx, alice, ledger.KindAgent)
	require.NoError(t, err)
	_, err = f.main.Ledger.Grant(ctx, ledgerstore.SupplyRequest{To: alice, AmountUnits: 100 * avt, Reason: "audit test", Actor: admin, IdempotencyKey: "audit-fund"})
	require.NoError(t, err)
	bob := "did:theprotocol:" + uuid.NewString()
	_, _, err = f.es.Ledger.OpenAccount(ctx, bob, ledger.KindAgent)
	require.NoError(t, err)

	// A cross-registry transfer whose commit the target never receives.
	stall.Store(true)
	const amount = 12 * avt
	x, err := f.main.Payments.Forward(ctx, ledgerstore.XferRequest{From: alice, To: bob, Target: f.esReg.ID, AmountUnits: amount, IdempotencyKey: "audit-inflight"})
	require.NoError(t, err)
	wf := workflows.SettlementWorkflowID(f.mainReg.ID, f.esReg.ID, x.ID)
	require.Eventually(t, func() bool { return settlementSagaState(t, f.main, wf) == workflows.SagaCommitStalled }, 60*time.Second, 100*time.Millisecond)
	require.Positive(t, refused.Load(), "the commit was refused by the injected fault")
	got, err := f.main.Ledger.GetXfer(ctx, x.ID)
	require.NoError(t, err)
	require.Equal(t, xferstate.Committing, got.Status, "decided, not yet credited")
	transitOut := tegLiquidUnits(t, f.main, ledgerstore.TransitAccount(f.esReg.ID))
	require.Equal(t, amount, transitOut, "the coordinator's leg: the sender's debit sits on transit:<target>")
	require.Zero(t, tegLiquidUnits(t, f.es, ledgerstore.TransitAccount(f.mainReg.ID)), "the target's leg is unmatched")
	require.Zero(t, tegLiquidUnits(t, f.es, bob))

	f.reconciles(amount, amount)
	// A wrong term fails the audit: one unit more destroyed than the TEG
	// burned, read inside a transaction that is rolled back.
	es := f.es.Pools[db.RoleEventStore]
	tx, err := es.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE supply_audit SET tokens_destroyed = tokens_destroyed + 1 WHERE frame = $1`, f.frame.ID)
	require.NoError(t, err)
	wrong, err := ingest.Audit(ctx, tx, f.frame.ID)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, int64(-1), wrong.Delta)
	require.False(t, wrong.OK, "a wrong tokens_destroyed fails the audit")

	// The target is back: the commit lands and the leg is matched.
	stall.Store(false)
	require.Eventually(t, func() bool {
		got, err := f.main.Ledger.GetXfer(ctx, x.ID)
		require.NoError(t, err)
		return got.Status == xferstate.Committed
	}, 90*time.Second, 100*time.Millisecond)
	require.Equal(t, -amount, tegLiquidUnits(t, f.es, ledgerstore.TransitAccount(f.mainReg.ID)))
	f.reconciles(0, 0)
	require.Equal(t, float64(0), violation(t, f.es))
}

// What the audit test mints and burns on the mainframe.
const auditMinted, auditBurned = 3 * avt, 7 * avt

// reconciles checkpoints both registries and waits until the reconciler
// has compared both checkpoints and netted the pair at that state; then it
// asserts that every term of the audit is what the TEGs hold, that neither
// registry differs from its checkpoint, and that the pair's transit
// balances (transit) are exactly the decided, uncredited transfers
// (inFlight).
func (f *reconFrame) reconciles(transit, inFlight int64) {
	t, ctx := f.t, context.Background()
	t.Helper()
	cpMain, err := f.main.Ledger.WriteCheckpoint(ctx)
	require.NoError(t, err)
	cpES, err := f.es.Ledger.WriteCheckpoint(ctx)
	require.NoError(t, err)
	regMain := f.registry(f.mainReg.ID, cpMain.CoversSeq)
	regES := f.registry(f.esReg.ID, cpES.CoversSeq)
	for _, r := range []ingest.RegistryReconciliation{regMain, regES} {
		require.Empty(t, r.Differences, "registry %s reconciles with its checkpoint", r.Registry)
		require.Zero(t, r.DeltaUnits, r.Registry)
		require.Zero(t, r.MissingSeqs, r.Registry)
		require.NotNil(t, r.Checkpoint)
	}
	a, b := f.mainReg.ID, f.esReg.ID
	if b < a {
		a, b = b, a
	}
	var pair ingest.PairNettingReport
	require.Eventually(t, func() bool {
		for _, p := range f.reconciliation().Netting {
			if p.A == a && p.B == b && !p.EvaluatedAt.Before(*regMain.EvaluatedAt) {
				pair = p
				return p.TransitUnits == transit
			}
		}
		return false
	}, 60*time.Second, 100*time.Millisecond, "the pair is netted at this state")
	require.Equal(t, inFlight, pair.InFlightUnits, "the decided, uncredited transfers are in flight")
	require.Zero(t, pair.Delta, "transit nets to the transfers in flight: %+v", pair)
	require.False(t, pair.Failing)

	// Every audit term against what the two TEGs hold.
	sup, err := f.main.Ledger.Supply(ctx)
	require.NoError(t, err)
	var circulating int64
	for _, n := range []*node.Node{f.main, f.es} {
		var units int64
		require.NoError(t, n.Pools[db.RoleTEG].QueryRow(ctx,
			`SELECT coalesce(sum(units), 0)::bigint FROM balances WHERE account_id <> 'issuance'`).Scan(&units))
		circulating += units
	}
	var rep ingest.AuditReport
	require.Eventually(t, func() bool {
		rep = f.audit()
		return rep.TotalCirculating == circulating
	}, 30*time.Second, 100*time.Millisecond, "the EventStore has every event (circulating %d)", circulating)
	require.NotZero(t, rep.TokensDestroyed, "the burn reached the EventStore")
	require.Equal(t, sup.BurnedUnits, rep.TokensDestroyed, "tokens_destroyed is what the mainframe burned")
	require.Equal(t, sup.MintedUnits, rep.TokensIssued, "tokens_issued is what the mainframe minted (genesis included)")
	require.Equal(t, f.frame.GenesisSupplyUnits+auditMinted, rep.TokensIssued)
	require.Equal(t, auditBurned, rep.TokensDestroyed)
	require.Zero(t, rep.TransitNet, "no value crossed the frame's boundary")
	require.Equal(t, rep.TokensIssued-rep.TokensDestroyed+rep.TransitNet, rep.NetSupply)
	require.Equal(t, rep.NetSupply, rep.TotalCirculating, "circulation, transit balances included, is the net supply")
	require.Zero(t, rep.Delta)
	require.Empty(t, rep.Failures)
	require.True(t, rep.OK, "%+v", rep)
}

func settlementSagaState(t *testing.T, n *node.Node, workflowID string) string {
	t.Helper()
	var st workflows.SettlementStatus
	v, err := n.Temporal.QueryWorkflow(context.Background(), workflowID, "", workflows.QuerySettlement)
	if err != nil {
		return "" // not started yet
	}
	require.NoError(t, v.Get(&st))
	return st.SagaState
}

func tegLiquidUnits(t *testing.T, n *node.Node, account string) int64 {
	t.Helper()
	var units int64
	err := n.Pools[db.RoleTEG].QueryRow(context.Background(),
		`SELECT coalesce(sum(units), 0)::bigint FROM balances WHERE account_id = $1 AND bucket = 'liquid'`, account).Scan(&units)
	require.NoError(t, err)
	return units
}
