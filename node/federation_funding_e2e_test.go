package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
)

// TestOperatorRegistryFundedByTheMainframe walks a new operator's economy
// through the public API on a mainframe and an operator registry (the dev
// topology's shape, real services): the mainframe funds the operator's
// treasury through the cross-registry saga (once, however often the dev
// stack asks), the operator's admin grants a developer who signed up there
// the funds for a bond, the developer registers an agent, and an agent of
// the mainframe pays that agent and the developer's wallet across
// registries. The allocation route refuses bad input with nothing moved,
// and the frame's supply audit stays at delta 0.
func TestOperatorRegistryFundedByTheMainframe(t *testing.T) {
	p := startXferPair(t, func(o *node.Options) { o.WriteAdminCredentials = true })
	ctx := context.Background()
	treasuryBefore, _ := balance(t, p.src, ledger.AccountTreasury)

	// The dev stack's start-up funding, twice: the second call replays.
	require.NoError(t, p.src.FundFrameOperators(ctx))
	require.NoError(t, p.src.FundFrameOperators(ctx))
	x, err := p.src.FundRegistry(ctx, p.dstReg.ID, node.DevOperatorFundingUnits, "dev stack: the operator registry's starting treasury", "dev-stack-funding-"+p.dstReg.ID)
	require.NoError(t, err)
	require.True(t, x.Replayed)
	var got xferDTO
	require.Eventually(t, func() bool {
		require.Equal(t, 200, p.c.call("GET", "/api/v1/transfers/"+x.ID.String(), p.admin, nil, &got))
		return got.Status == "committed"
	}, 60*time.Second, 100*time.Millisecond, "the allocation settles (last %+v)", got)
	fee := node.DevOperatorFundingUnits / 200 // the target's 0.5 % fee
	dstTreasury, _ := balance(t, p.dst, ledger.AccountTreasury)
	require.Equal(t, node.DevOperatorFundingUnits-fee, dstTreasury, "funded once, less the target's fee")
	srcTreasury, _ := balance(t, p.src, ledger.AccountTreasury)
	require.Equal(t, treasuryBefore-node.DevOperatorFundingUnits, srcTreasury)

	// The admin route: bad input is refused and moves nothing.
	for _, tc := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"no reason", map[string]any{"registry": p.dstReg.ID, "amount": "1"}, 400},
		{"no amount", map[string]any{"registry": p.dstReg.ID, "reason": "r"}, 400},
		{"negative amount", map[string]any{"registry": p.dstReg.ID, "amount_units": -5, "reason": "r"}, 400},
		{"itself", map[string]any{"registry": p.srcReg.ID, "amount": "1", "reason": "r"}, 400},
		{"not a peer", map[string]any{"registry": "nobody-here", "amount": "1", "reason": "r"}, 404},
		{"malformed registry", map[string]any{"registry": "Bad Registry!", "amount": "1", "reason": "r"}, 400},
		{"more than the treasury", map[string]any{"registry": p.dstReg.ID, "amount_units": srcTreasury + 1, "reason": "r"}, 422},
	} {
		require.Equal(t, tc.want, p.c.call("POST", "/api/v1/admin/federation/allocations", p.admin, tc.body, nil), tc.name)
	}
	dstAPI := httpClient{t, p.dst.URL()}
	dstAdmin := dstAPI.adminToken(p.srcDir, p.dstReg.ID)
	require.Equal(t, 422, dstAPI.call("POST", "/api/v1/admin/federation/allocations", dstAdmin,
		map[string]any{"registry": p.srcReg.ID, "amount": "1", "reason": "r"}, nil), "only the mainframe funds")
	require.Equal(t, 403, p.c.call("POST", "/api/v1/admin/federation/allocations", p.aliceTok,
		map[string]any{"registry": p.dstReg.ID, "amount": "1", "reason": "r"}, nil), "admins only")
	after, _ := balance(t, p.src, ledger.AccountTreasury)
	require.Equal(t, srcTreasury, after, "refusals move nothing")

	// A second allocation through the route settles too.
	var y xferDTO
	require.Equal(t, 202, p.c.call("POST", "/api/v1/admin/federation/allocations", p.admin,
		map[string]any{"registry": p.dstReg.ID, "amount": "200", "reason": "top-up"}, &y))
	require.Eventually(t, func() bool {
		require.Equal(t, 200, p.c.call("GET", "/api/v1/transfers/"+y.ID.String(), p.admin, nil, &y))
		return y.Status == "committed"
	}, 60*time.Second, 100*time.Millisecond)

	// The documented funding on the operator: a developer signs up there,
	// its admin grants the bond money, the developer registers an agent.
	dev, devTok := dstAPI.signUp("Grace", "grace-"+p.dstReg.ID+"@example.org")
	require.Equal(t, 201, dstAPI.call("POST", "/api/v1/admin/grants", dstAdmin, map[string]any{"to": dev.AccountID, "amount": "100", "reason": "bonds"}, nil))
	var bt struct {
		Token string `json:"bootstrap_token"`
	}
	require.Equal(t, 201, dstAPI.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
	var carol struct {
		DID string `json:"did"`
	}
	require.Equal(t, 201, dstAPI.call("POST", "/api/v1/agents", bt.Token, map[string]any{}, &carol))
	t.Cleanup(func() { terminateBonds(p.dst, carol.DID) })
	units, held := balance(t, p.dst, dev.AccountID)
	require.Equal(t, int64(50*avt), units, "100 granted, 50 locked in the bond")
	require.Zero(t, held)

	// Where they live, asked on the mainframe.
	for _, acct := range []string{carol.DID, dev.AccountID} {
		var res struct {
			Registry string `json:"registry"`
			Local    bool   `json:"local"`
		}
		require.Equal(t, 200, p.c.call("GET", "/api/v1/federation/resolve/"+acct, p.aliceTok, nil, &res))
		require.Equal(t, p.dstReg.ID, res.Registry)
		require.False(t, res.Local)
	}
	require.Equal(t, 400, p.c.call("GET", "/api/v1/federation/resolve/treasury", p.aliceTok, nil, nil))
	require.Equal(t, 401, p.c.call("GET", "/api/v1/federation/resolve/"+carol.DID, "", nil, nil))

	// An agent of the mainframe pays the operator's agent and the
	// developer's wallet.
	for _, to := range []string{carol.DID, dev.AccountID} {
		before, _ := balance(t, p.dst, to)
		sent := p.send(to, 10*avt)
		p.waitStatus(sent.ID, "committed", 60*time.Second)
		now, _ := balance(t, p.dst, to)
		require.Equal(t, before+10*avt-10*avt/200, now, to)
	}
	p.checkEventStore()
}
