package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBridgeSettingsValidate(t *testing.T) {
	require.NoError(t, DefaultBridgeSettings().Validate())
	for _, mut := range []func(*BridgeSettings){
		func(s *BridgeSettings) { s.Window = 0 },
		func(s *BridgeSettings) { s.Window = 2 * time.Hour },
		func(s *BridgeSettings) { s.MaxBatch = 0 },
		func(s *BridgeSettings) { s.MaxBatch = 501 },
		func(s *BridgeSettings) { s.MaxInFlight = 0 },
		func(s *BridgeSettings) { s.MaxBacklog = 10 },
	} {
		s := DefaultBridgeSettings()
		mut(&s)
		require.Error(t, s.Validate(), "%+v", s)
	}
}
