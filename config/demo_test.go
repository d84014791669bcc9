package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDemoSettingsFromEnvAndValidation(t *testing.T) {
	var s DemoSettings
	r := &envReader{}
	s.fromEnv(r)
	require.Empty(t, r.errs)
	require.Equal(t, DefaultDemoSettings(), s)

	t.Setenv("THEPROTOCOL_DEMO_AGENTS", "false")
	t.Setenv("THEPROTOCOL_DEMO_INTERVAL", "3s")
	s.fromEnv(r)
	require.Empty(t, r.errs)
	require.Equal(t, DemoSettings{Agents: false, Interval: 3 * time.Second}, s)

	t.Setenv("THEPROTOCOL_DEMO_AGENTS", "sometimes")
	s.fromEnv(r)
	require.Len(t, r.errs, 1)

	require.Error(t, DemoSettings{Interval: 500 * time.Millisecond}.Validate())
	require.Error(t, DemoSettings{Interval: 2 * time.Hour}.Validate())
	require.NoError(t, DefaultDemoSettings().Validate())
}
