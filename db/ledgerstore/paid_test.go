package ledgerstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// A payment token's hold (PlaceHoldWith: one conditional update) answers
// as PlaceHold does: a retry of its key is the original hold even when
// the funds it took leave too little for another; unknown accounts are
// NotFound, too little available is InsufficientFunds, nothing reserved.
func TestPaidHoldAnswersAsPlaceHold(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b := e.agent(10*avt), e.agent(0)
	now := e.clock.Now()
	hr := ledgerstore.HoldRequest{From: a, To: b, AmountUnits: 8 * avt, ExpiresAt: now.Add(time.Minute), IdempotencyKey: "tok-1"}
	h, err := e.store.PlaceHoldWith(e.ctx, hr, nil)
	require.NoError(t, err)
	again, err := e.store.PlaceHoldWith(e.ctx, hr, nil)
	require.NoError(t, err, "only 2 AVT are left, but this is a retry")
	require.True(t, again.Replayed)
	require.Equal(t, h.ID, again.ID)
	other := hr
	other.AmountUnits = 1 * avt
	_, err = e.store.PlaceHoldWith(e.ctx, other, nil)
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err))

	for _, c := range []struct {
		name string
		r    ledgerstore.HoldRequest
		code apperr.Code
	}{
		{"too little", ledgerstore.HoldRequest{From: a, To: b, AmountUnits: 3 * avt, IdempotencyKey: "tok-2"}, apperr.InsufficientFunds},
		{"unknown payee", ledgerstore.HoldRequest{From: a, To: registry.NewDID(), AmountUnits: avt, IdempotencyKey: "tok-3"}, apperr.NotFound},
		{"unknown payer", ledgerstore.HoldRequest{From: registry.NewDID(), To: b, AmountUnits: avt, IdempotencyKey: "tok-4"}, apperr.NotFound},
	} {
		c.r.ExpiresAt = now.Add(time.Minute)
		_, err := e.store.PlaceHoldWith(e.ctx, c.r, nil)
		require.Equal(t, c.code, apperr.CodeOf(err), c.name)
	}
	bal, err := e.store.Balances(e.ctx, a)
	require.NoError(t, err)
	require.Equal(t, 2*avt, bal.AvailableUnits, "only the first hold reserves")

	// The hold of a payee on another registry cannot be posted or voided
	// by hand: only its settlement or release decides it.
	xh, err := e.store.PlacePaidXferHold(e.ctx, ledgerstore.HoldRequest{From: a, AmountUnits: avt, ExpiresAt: now.Add(time.Minute), IdempotencyKey: "tok-5"}, "peer-reg", nil)
	require.NoError(t, err)
	require.True(t, xh.CrossRegistry())
	require.Equal(t, ledgerstore.TransitAccount("peer-reg"), xh.To)
	_, x, err := e.store.SettlePaidXfer(e.ctx, xh.ID, avt/2, registry.NewDID(), "peer-reg", nil)
	require.NoError(t, err)
	bal, err = e.store.Balances(e.ctx, a)
	require.NoError(t, err)
	require.Equal(t, 2*avt-avt/2, bal.AvailableUnits, "the transfer holds what is due, the rest is back")
	_, again2, err := e.store.SettlePaidXfer(e.ctx, xh.ID, avt/2, x.To, "peer-reg", nil)
	require.NoError(t, err)
	require.True(t, again2.Replayed)
	require.Equal(t, x.ID, again2.ID)
	_, _, err = e.store.SettlePaidXfer(e.ctx, xh.ID, avt/4, x.To, "peer-reg", nil)
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err), "settled with another amount")
}
