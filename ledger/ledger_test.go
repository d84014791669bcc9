package ledger_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/ledger"
)

func TestFeeCurve(t *testing.T) {
	t.Parallel()
	cases := []struct {
		prior int
		bps   int64
	}{
		{0, 50}, {1, 50}, {9, 50},
		{10, 100}, {14, 100},
		{15, 150}, {19, 150},
		{20, 200}, {25, 250}, {30, 300}, {35, 350}, {40, 400},
		{45, 450}, {49, 450},
		{50, 500}, {51, 500}, {1000, 500}, {math.MaxInt32, 500},
		{-1, 50},
	}
	for _, c := range cases {
		require.Equal(t, c.bps, ledger.FeeBpsForVelocity(c.prior), "prior=%d", c.prior)
	}
	require.Equal(t, 50, ledger.VelocityCountCap)
	require.Equal(t, ledger.MaxFeeBps, ledger.FeeBpsForVelocity(ledger.VelocityCountCap))
	require.Less(t, ledger.FeeBpsForVelocity(ledger.VelocityCountCap-1), ledger.MaxFeeBps)
}

func TestTransferFee(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		amount, bps int64
		fee, net    int64
		err         error
	}{
		{"one AVT at base", 100_000_000, 50, 500_000, 99_500_000, nil},
		{"rounds up a fraction of a unit", 201, 50, 2, 199, nil},
		{"exact unit", 200, 50, 1, 199, nil},
		{"smallest possible transfer", 2, 50, 1, 1, nil},
		{"smallest at max rate", 2, 500, 1, 1, nil},
		{"max rate", 1_000_000, 500, 50_000, 950_000, nil},
		{"max rate rounding", 1_000_001, 500, 50_001, 950_000, nil},
		{"largest amount", math.MaxInt64, 500, 461_168_601_842_738_791, math.MaxInt64 - 461_168_601_842_738_791, nil},
		{"one unit cannot pay the fee", 1, 50, 0, 0, ledger.ErrAmountTooSmall},
		{"zero", 0, 50, 0, 0, ledger.ErrAmountNotPositive},
		{"negative", -5, 50, 0, 0, ledger.ErrAmountNotPositive},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := ledger.TransferFee(c.amount, c.bps)
			require.ErrorIs(t, err, c.err)
			if c.err != nil {
				return
			}
			require.Equal(t, c.fee, f.FeeUnits)
			require.Equal(t, c.net, f.NetUnits)
			require.Equal(t, c.amount, f.FeeUnits+f.NetUnits, "fee + net == amount exactly")
			require.Equal(t, c.bps, f.Bps)
		})
	}
	_, err := ledger.TransferFee(100, 501)
	require.Error(t, err)
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	ok := map[string]ledger.Kind{
		"did:theprotocol:0190b3c4-1d2e-7f00-8000-0123456789ab": ledger.KindAgent,
		"dev:alice":          ledger.KindDeveloper,
		"dev:A.b-c_9":        ledger.KindDeveloper,
		"treasury":           ledger.KindSystem,
		"fee_collector":      ledger.KindSystem,
		"issuance":           ledger.KindSystem,
		"transit:alpha-op1":  ledger.KindTransit,
		"transit:frame:beta": ledger.KindTransit,
	}
	for id, k := range ok {
		got, err := ledger.KindOf(id)
		require.NoError(t, err, id)
		require.Equal(t, k, got, id)
	}
	for _, id := range []string{
		"", "did:theprotocol:", "did:theprotocol:0190B3C4-1D2E-7F00-8000-0123456789AB", "did:web:x",
		"dev:", "dev:a b", "transit:", "transit:UP", "Treasury", "alice",
	} {
		_, err := ledger.KindOf(id)
		require.Error(t, err, id)
	}
}

func TestBuckets(t *testing.T) {
	t.Parallel()
	for _, b := range []string{"liquid", "staked", "locked_bond", "locked_bridge", "pending_out", "wrapped:beta", ledger.WrappedBucket("alpha")} {
		require.NoError(t, ledger.ValidateBucket(b), b)
	}
	for _, b := range []string{"", "Liquid", "wrapped:", "wrapped:Beta", "wrapped:-x", "savings"} {
		require.Error(t, ledger.ValidateBucket(b), b)
	}
}

func TestValidatePostings(t *testing.T) {
	t.Parallel()
	a, b := "dev:a", "dev:b"
	require.NoError(t, ledger.ValidatePostings([]ledger.Posting{{a, "liquid", -10}, {b, "liquid", 9}, {"fee_collector", "liquid", 1}}))
	require.Error(t, ledger.ValidatePostings([]ledger.Posting{{a, "liquid", -10}}), "one leg")
	require.Error(t, ledger.ValidatePostings([]ledger.Posting{{a, "liquid", -10}, {b, "liquid", 9}}), "unbalanced")
	require.Error(t, ledger.ValidatePostings([]ledger.Posting{{a, "liquid", 0}, {b, "liquid", 0}}), "zero legs")
	require.Error(t, ledger.ValidatePostings([]ledger.Posting{{a, "bogus", -1}, {b, "liquid", 1}}), "bucket")
	require.Error(t, ledger.ValidatePostings([]ledger.Posting{{"x", "liquid", -1}, {b, "liquid", 1}}), "account")
	// Sums that would wrap around to zero are overflow, not balance.
	require.Error(t, ledger.ValidatePostings([]ledger.Posting{
		{a, "liquid", math.MaxInt64}, {b, "liquid", math.MaxInt64}, {"issuance", "liquid", 2},
	}))
}
