package ledgerstore_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// TestTreasuryAllocationOnlyFromTheFunder: an operator registry's TEG
// prepares a treasury-to-treasury transfer only from its configured funder
// (the frame's mainframe) and credits its treasury on commit; any other
// peer's attempt is rejected and credits nothing. On the coordinator,
// treasury to treasury is the one system-account transfer accepted, and
// no other system account may send or receive across registries.
func TestTreasuryAllocationOnlyFromTheFunder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	op := ledgerstore.New(testenv.NewDB(t, db.RoleTEG).Pool, ledgerstore.Options{
		Frame: "alpha", Registry: "alpha-op1", TreasuryFunder: "alpha-main",
	})
	item := func() ledgerstore.XferPrepareItem {
		return ledgerstore.XferPrepareItem{ID: uuid.New(), From: ledger.AccountTreasury, To: ledger.AccountTreasury, AmountUnits: 1000 * avt}
	}
	rogue := item()
	rs, err := op.PrepareXfers(ctx, "alpha-op2", []ledgerstore.XferPrepareItem{rogue})
	require.NoError(t, err)
	require.Equal(t, xferstate.Rejected, rs[0].Status, rs[0].Reason)
	rs, err = op.CommitXfers(ctx, "alpha-op2", []ledgerstore.XferPrepareItem{rogue})
	require.NoError(t, err)
	require.NotEqual(t, xferstate.Committed, rs[0].Status)

	good := item()
	rs, err = op.PrepareXfers(ctx, "alpha-main", []ledgerstore.XferPrepareItem{good})
	require.NoError(t, err)
	require.Equal(t, xferstate.Prepared, rs[0].Status, rs[0].Reason)
	rs, err = op.CommitXfers(ctx, "alpha-main", []ledgerstore.XferPrepareItem{good})
	require.NoError(t, err)
	require.Equal(t, xferstate.Committed, rs[0].Status, rs[0].Reason)
	b, err := op.Balances(ctx, ledger.AccountTreasury)
	require.NoError(t, err)
	require.Equal(t, 1000*avt-1000*avt/200, b.AvailableUnits, "credited less the 0.5 % fee, once")

	// A registry without a funder (the mainframe) accepts none.
	main := ledgerstore.New(testenv.NewDB(t, db.RoleTEG).Pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true})
	rs, err = main.PrepareXfers(ctx, "alpha-op1", []ledgerstore.XferPrepareItem{item()})
	require.NoError(t, err)
	require.Equal(t, xferstate.Rejected, rs[0].Status)

	// The coordinator: other system accounts never cross.
	for name, r := range map[string]ledgerstore.XferRequest{
		"treasury to fee_collector": {From: ledger.AccountTreasury, To: ledger.AccountFeeCollector},
		"fee_collector to treasury": {From: ledger.AccountFeeCollector, To: ledger.AccountTreasury},
		"treasury to an agent":      {From: ledger.AccountTreasury, To: agentID()},
		"issuance to treasury":      {From: ledger.AccountIssuance, To: ledger.AccountTreasury},
	} {
		r.Target, r.AmountUnits, r.IdempotencyKey = "alpha-op1", avt, "k-"+uuid.NewString()
		_, err := main.BeginXfer(ctx, r)
		require.Equal(t, apperr.Invalid, apperr.CodeOf(err), name)
	}
}
