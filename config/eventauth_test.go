package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEventAuthSettings(t *testing.T) {
	c, err := load(t, nil)
	require.NoError(t, err)
	require.True(t, c.EventAuth.Enabled(), "required unless turned off")
	require.Equal(t, "/data/alpha-main/event-signing-key.pem", c.EventAuth.KeyFile("/data", "alpha-main"))
	require.Empty(t, c.EventAuth.KeyFile("", "alpha-main"), "never a path relative to the working directory")
	require.Equal(t, "/data", c.EventAuth.TrustDirectory("/data"))

	c, err = load(t, map[string]string{"THEPROTOCOL_EVENT_AUTH": "off", "THEPROTOCOL_EVENT_SIGNING_KEY": "/keys/e.pem"},
		"-event-trust-dir", "/trust")
	require.NoError(t, err)
	require.False(t, c.EventAuth.Enabled())
	require.Equal(t, "/keys/e.pem", c.EventAuth.KeyFile("/data", "alpha-main"))
	require.Equal(t, "/trust", c.EventAuth.TrustDirectory("/data"))

	for _, bad := range []string{"on", "Required", "optional"} {
		_, err = load(t, map[string]string{"THEPROTOCOL_EVENT_AUTH": bad})
		require.ErrorContains(t, err, "event-auth (env THEPROTOCOL_EVENT_AUTH) must be required or off")
	}
}
