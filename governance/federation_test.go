package governance_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/governance"
)

func fedKeys(t *testing.T, regs ...string) (map[string]ed25519.PrivateKey, map[string]ed25519.PublicKey) {
	priv, pub := map[string]ed25519.PrivateKey{}, map[string]ed25519.PublicKey{}
	for _, r := range regs {
		p, k, err := ed25519.GenerateKey(nil)
		require.NoError(t, err)
		priv[r], pub[r] = k, p
	}
	return priv, pub
}

// Three registries vote; the aggregate counts all three. A peer down at
// the deadline is listed as missing, not silently left out.
func TestAggregateFederationTallies(t *testing.T) {
	regs := []string{"alpha-main", "alpha-op1", "beta-main"}
	priv, pub := fedKeys(t, regs...)
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sign := func(reg string, e, y, n, a int64) governance.SignedTally {
		s, err := governance.SignTally(priv[reg], governance.LocalTally{ProposalID: "p1", Registry: reg, Electorate: e, Yes: y, No: n, Abstain: a, TalliedAt: at})
		require.NoError(t, err)
		return s
	}
	rules := governance.Rules{QuorumBps: 4000, ThresholdBps: 6500}
	all := []governance.SignedTally{sign("alpha-main", 100, 50, 10, 0), sign("alpha-op1", 50, 20, 0, 5), sign("beta-main", 80, 0, 30, 0)}
	r, err := governance.Aggregate("p1", regs, pub, all, rules)
	require.NoError(t, err)
	require.Equal(t, regs, r.Counted)
	require.Empty(t, r.Missing)
	require.Equal(t, int64(230), r.Electorate)
	require.Equal(t, int64(70), r.Yes)
	require.Equal(t, int64(40), r.No)
	require.True(t, r.QuorumMet) // 115/230 ≥ 40 %
	require.False(t, r.Passed)   // 70/110 < 65 %

	r, err = governance.Aggregate("p1", regs, pub, all[:2], rules)
	require.NoError(t, err)
	require.Equal(t, []string{"beta-main"}, r.Missing)
	require.True(t, r.Passed) // 70/80 without beta's no votes: the caller sees who was missing

	// Refused: another proposal, a stranger, a duplicate, a bad signature,
	// more votes than electorate.
	other, err := governance.SignTally(priv["alpha-main"], governance.LocalTally{ProposalID: "p2", Registry: "alpha-main", Electorate: 1, TalliedAt: at})
	require.NoError(t, err)
	forged := sign("alpha-op1", 50, 20, 0, 5)
	forged.Tally.Yes = 45
	over := sign("alpha-op1", 10, 20, 0, 0)
	sPriv, sPub := fedKeys(t, "gamma")
	stranger, err := governance.SignTally(sPriv["gamma"], governance.LocalTally{ProposalID: "p1", Registry: "gamma", Electorate: 1, TalliedAt: at})
	require.NoError(t, err)
	pub["gamma"] = sPub["gamma"]
	for name, ts := range map[string][]governance.SignedTally{
		"other proposal": {other},
		"stranger":       {stranger},
		"duplicate":      {all[0], all[0]},
		"forged":         {forged},
		"over":           {over},
		"wrong key":      {{Tally: all[0].Tally, Signature: all[1].Signature}},
	} {
		_, err := governance.Aggregate("p1", regs, pub, ts, rules)
		require.Error(t, err, name)
	}
}

// The signed text is canonical: a line break cannot shift fields.
func TestLocalTallySigningBytes(t *testing.T) {
	_, err := governance.LocalTally{ProposalID: "p\n1", Registry: "r"}.SigningBytes()
	require.Error(t, err)
	a, err := governance.LocalTally{ProposalID: "p", Registry: "r", Yes: 1, TalliedAt: time.Unix(0, 5)}.SigningBytes()
	require.NoError(t, err)
	b, err := governance.LocalTally{ProposalID: "p", Registry: "r", No: 1, TalliedAt: time.Unix(0, 5)}.SigningBytes()
	require.NoError(t, err)
	require.NotEqual(t, a, b)
}
