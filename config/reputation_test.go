package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReputationSettings(t *testing.T) {
	require.NoError(t, DefaultReputationSettings().Validate())
	for name, mut := range map[string]func(*ReputationSettings){
		"cron":        func(s *ReputationSettings) { s.Cron = "hourly" },
		"pair cap":    func(s *ReputationSettings) { s.PairCapUnits = 0 },
		"iterations":  func(s *ReputationSettings) { s.MaxIterations = 0 },
		"floor":       func(s *ReputationSettings) { s.BreachFloorBps = 10001 },
		"pre-trusted": func(s *ReputationSettings) { s.PreTrusted = []string{"alice"} },
	} {
		s := DefaultReputationSettings()
		mut(&s)
		require.Error(t, s.Validate(), name)
	}

	t.Setenv("THEPROTOCOL_REPUTATION_PRE_TRUSTED", "did:a, did:b,")
	t.Setenv("THEPROTOCOL_REPUTATION_SLASH_ON_BREACH", "true")
	t.Setenv("THEPROTOCOL_REPUTATION_CRON", "*/5 * * * *")
	c := Defaults()
	require.NoError(t, c.Reputation.Validate())
	require.Equal(t, []string{"did:a", "did:b"}, c.Reputation.PreTrusted)
	require.True(t, c.Reputation.SlashOnBreach)
	require.Equal(t, "*/5 * * * *", c.Reputation.Cron)

	t.Setenv("THEPROTOCOL_REPUTATION_SLASH_ON_BREACH", "maybe")
	c = Defaults()
	require.Error(t, c.Validate(), "an unparsable variable fails validation")
}
