package dispute

import (
	"testing"
	"testing/quick"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckOpen(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	base := Opening{Complainant: "a", Sender: "a", Receiver: "b", TransferUnits: 1000, TransferAt: t0, ClaimedUnits: 1000, Now: t0}
	for _, c := range []struct {
		name       string
		edit       func(*Opening)
		respondent string
		err        error
	}{
		{"sender complains", func(*Opening) {}, "b", nil},
		{"receiver complains", func(o *Opening) { o.Complainant = "b" }, "a", nil},
		{"stranger", func(o *Opening) { o.Complainant = "c" }, "", ErrNotParty},
		{"over claim", func(o *Opening) { o.ClaimedUnits = 1001 }, "", ErrOverClaim},
		{"last instant of the window", func(o *Opening) { o.Now = t0.Add(DefaultRules.OpenWindow - time.Nanosecond) }, "b", nil},
		{"window closed", func(o *Opening) { o.Now = t0.Add(DefaultRules.OpenWindow) }, "", ErrWindowClosed},
	} {
		o := base
		c.edit(&o)
		r, d, fee, err := DefaultRules.CheckOpen(o)
		require.ErrorIs(t, err, c.err, c.name)
		if c.err != nil {
			continue
		}
		require.Equal(t, c.respondent, r, c.name)
		require.Equal(t, o.Now.Add(7*24*time.Hour), d.RespondBy, c.name)
		require.Equal(t, d.RespondBy.Add(14*24*time.Hour), d.RuleBy, c.name)
		require.Equal(t, int64(50), fee, c.name)
	}
	_, _, _, err := DefaultRules.CheckOpen(Opening{Complainant: "a", Sender: "a", Receiver: "b", TransferUnits: 5, ClaimedUnits: 0, Now: t0, TransferAt: t0})
	require.Error(t, err)
}

func TestFeeAndAward(t *testing.T) {
	for _, c := range []struct{ claim, want int64 }{{1, 1}, {19, 1}, {20, 1}, {21, 2}, {100_000_000, 5_000_000}} {
		f, err := DefaultRules.Fee(c.claim)
		require.NoError(t, err)
		require.Equal(t, c.want, f, "fee on %d rounds up", c.claim)
	}
	a, err := CheckAward(ForComplainant, 0, 70)
	require.NoError(t, err)
	require.EqualValues(t, 70, a, "no award given: the claim")
	_, err = CheckAward(ForComplainant, 71, 70)
	require.Error(t, err)
	_, err = CheckAward(ForComplainant, -1, 70)
	require.Error(t, err)
	_, err = CheckAward(ForRespondent, 1, 70)
	require.Error(t, err)
	require.EqualValues(t, 3, FeeCharged(5, 3))
	require.EqualValues(t, 0, FeeCharged(5, -2))
	require.Error(t, Rules{}.Validate())
	require.NoError(t, DefaultRules.Validate())
	require.Error(t, Rules{OpenWindow: 1, ResponseWindow: 1, RulingWindow: 1, FeeBps: 10_001}.Validate())
	_, err = ParseOutcome("tribunal")
	require.Error(t, err)
}

// Property: the fee is between the exact share and the claim, at most
// one unit above the exact share; the charge never exceeds the fee due
// nor what is available.
func TestFeeProperty(t *testing.T) {
	f := func(claim int64, bps uint16, avail int64) bool {
		if claim < 0 {
			claim = -(claim + 1)
		}
		r := Rules{FeeBps: int64(bps) % (MaxFeeBps + 1)}
		fee, err := r.Fee(claim)
		if err != nil {
			return false
		}
		lo := new(big).mulDiv(claim, r.FeeBps)
		ok := fee >= 0 && fee <= claim && (fee == lo || fee == lo+1 || fee == claim)
		c := FeeCharged(fee, avail)
		return ok && c >= 0 && c <= fee && (avail < 0 || c <= avail)
	}
	require.NoError(t, quick.Check(f, &quick.Config{MaxCount: 2000}))
}

// big computes claim×bps/10,000 rounded down without overflow.
type big struct{}

func (big) mulDiv(claim, bps int64) int64 {
	q, r := claim/MaxFeeBps, claim%MaxFeeBps
	return q*bps + r*bps/MaxFeeBps
}
