package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDiscoverySettings(t *testing.T) {
	c, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, DiscoverySettings{Depth: 4, Interval: time.Minute}, c.Discovery)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want DiscoverySettings
		errs []string
	}{
		{name: "from the environment", env: map[string]string{"THEPROTOCOL_DISCOVERY_DEPTH": "3", "THEPROTOCOL_DISCOVERY_INTERVAL": "10s"},
			want: DiscoverySettings{Depth: 3, Interval: 10 * time.Second}},
		{name: "flags over the environment", env: map[string]string{"THEPROTOCOL_DISCOVERY_DEPTH": "3"},
			args: []string{"-discovery-depth", "1", "-discovery-interval", "1s"}, want: DiscoverySettings{Depth: 1, Interval: time.Second}},
		{name: "depth 0", env: map[string]string{"THEPROTOCOL_DISCOVERY_DEPTH": "0"}, errs: []string{"THEPROTOCOL_DISCOVERY_DEPTH", "1 to 8", "got 0"}},
		{name: "depth past the bound", args: []string{"-discovery-depth", "9"}, errs: []string{"discovery-depth", "got 9"}},
		{name: "interval too short", env: map[string]string{"THEPROTOCOL_DISCOVERY_INTERVAL": "1ms"}, errs: []string{"THEPROTOCOL_DISCOVERY_INTERVAL", "at least 100ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.env, tc.args...)
			if tc.errs == nil {
				require.NoError(t, err)
				require.Equal(t, tc.want, c.Discovery)
				return
			}
			require.Error(t, err)
			for _, e := range tc.errs {
				require.Contains(t, err.Error(), e)
			}
		})
	}
}
