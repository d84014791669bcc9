package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/dispute"
)

func TestDisputeSettings(t *testing.T) {
	c, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, dispute.DefaultRules, c.Dispute.Rules())

	c, err = load(t, map[string]string{"THEPROTOCOL_DISPUTE_RESPONSE_WINDOW": "48h", "THEPROTOCOL_DISPUTE_FEE_BPS": "100"}, "-dispute-fee-bps", "250")
	require.NoError(t, err)
	require.Equal(t, 48*time.Hour, c.Dispute.ResponseWindow, "environment over default")
	require.EqualValues(t, 250, c.Dispute.FeeBps, "flag over environment")

	for _, bad := range [][]string{
		{"-dispute-fee-bps", "10001"}, {"-dispute-open-window", "0s"}, {"-dispute-ruling-window", "9000h"}, {"-dispute-response-window", "-1s"},
	} {
		_, err := load(t, nil, bad...)
		require.ErrorContains(t, err, bad[0][1:], bad)
	}
	_, err = load(t, map[string]string{"THEPROTOCOL_DISPUTE_OPEN_WINDOW": "soon"})
	require.ErrorContains(t, err, "THEPROTOCOL_DISPUTE_OPEN_WINDOW")
}
