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
		func(s *BridgeSettings) { s.PeerCards = "/nonexistent/frame-card.json" },
		func(s *BridgeSettings) { s.AdvertiseHost = "https://beta.example" },
	} {
		s := DefaultBridgeSettings()
		mut(&s)
		require.Error(t, s.Validate(), "%+v", s)
	}
	s := DefaultBridgeSettings()
	s.PeerCards, s.AdvertiseHost = " "+t.TempDir()+" ,", "beta.example"
	require.NoError(t, s.Validate())
	require.Len(t, s.PeerCardList(), 1)
}
