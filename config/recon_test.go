package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReconSettings(t *testing.T) {
	c, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, DefaultReconSettings(), c.Recon)

	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c Config)
		errs  []string
	}{
		{name: "checkpoints every 5m", env: map[string]string{"THEPROTOCOL_CHECKPOINT_EVERY": "5m"},
			check: func(t *testing.T, c Config) { require.Equal(t, 5*time.Minute, c.Recon.CheckpointEvery) }},
		{name: "checkpoints faster than the schedule", env: map[string]string{"THEPROTOCOL_CHECKPOINT_EVERY": "10s"},
			errs: []string{"checkpoint-every (env THEPROTOCOL_CHECKPOINT_EVERY)", "[1m, 24h]", "got 10s"}},
		{name: "grace zero", env: map[string]string{"THEPROTOCOL_RECON_GRACE": "0s"},
			errs: []string{"recon-grace (env THEPROTOCOL_RECON_GRACE)", "positive duration"}},
		{name: "grace garbage", env: map[string]string{"THEPROTOCOL_RECON_GRACE": "soon"},
			errs: []string{`THEPROTOCOL_RECON_GRACE="soon"`}},
		{name: "pass interval by flag", args: []string{"-recon-every", "1s"},
			check: func(t *testing.T, c Config) { require.Equal(t, time.Second, c.Recon.Every) }},
		{name: "staleness shorter than two passes", env: map[string]string{"THEPROTOCOL_RECON_EVERY": "1m", "THEPROTOCOL_RECON_STALE_AFTER": "90s"},
			errs: []string{"recon-stale-after (env THEPROTOCOL_RECON_STALE_AFTER) must be more than twice recon-every"}},
		{name: "max age under the spacing", env: map[string]string{"THEPROTOCOL_CHECKPOINT_EVERY": "10m", "THEPROTOCOL_CHECKPOINT_MAX_AGE": "10m"},
			errs: []string{"checkpoint-max-age (env THEPROTOCOL_CHECKPOINT_MAX_AGE) must be longer than checkpoint-every"}},
		{name: "eventstore mTLS URL", env: map[string]string{"THEPROTOCOL_EVENTSTORE_MTLS_URL": "https://es.internal:9101"},
			check: func(t *testing.T, c Config) { require.Equal(t, "https://es.internal:9101", c.Recon.EventStoreMTLSURL) }},
		{name: "eventstore URL without TLS", env: map[string]string{"THEPROTOCOL_EVENTSTORE_MTLS_URL": "http://es.internal:9101"},
			errs: []string{"eventstore-mtls-url (env THEPROTOCOL_EVENTSTORE_MTLS_URL) must be an https URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.env, tc.args...)
			if tc.errs == nil {
				require.NoError(t, err)
				tc.check(t, c)
				return
			}
			require.Error(t, err)
			for _, want := range tc.errs {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}
