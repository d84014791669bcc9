package config

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/workflows"
)

// cleanEnv blanks every configuration variable of the outer environment
// (Env reads an empty value as unset), so a developer's shell cannot change
// what these tests see.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "THEPROTOCOL_") || k == "KAFKA_BROKERS" {
			t.Setenv(k, "")
		}
	}
}

// load is what every subcommand does at start: environment, flags, checks.
func load(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	cleanEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	c := Defaults()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse(args))
	return c, c.Validate()
}

// The defaults are the values the nodes used before the settings moved here;
// they are spelled out rather than taken from Default*Settings so a changed
// default fails this test.
func TestRoleSettingsDefaults(t *testing.T) {
	c, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, BondSettings{MinAge: 720 * time.Hour, MinTransfers: 10, MinTrust: 5000, RecheckEvery: 168 * time.Hour}, c.Bond)
	require.Equal(t, XferSettings{
		MaxBatch: 500, MaxAge: 250 * time.Millisecond, MaxInFlight: 4, MaxBacklog: 0,
		PrepareMaxAge: 5 * time.Minute, RecoverEvery: 30 * time.Second, TemporalUIBase: "http://127.0.0.1:8233",
	}, c.Xfer)
	require.Equal(t, RegistrySettings{TokenTTL: 15 * time.Minute, BootstrapTTL: 15 * time.Minute}, c.RegistryAPI)
	require.Equal(t, c.Bond, DefaultBondSettings())
	require.Equal(t, c.Xfer, DefaultXferSettings())
	require.Equal(t, c.RegistryAPI, DefaultRegistrySettings())
}

func TestSettingsFromEnvironment(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		// Either check (the value was accepted) or errs (every substring
		// must be in the start-up error).
		check func(t *testing.T, c Config)
		errs  []string
	}{
		// Bond.
		{name: "bond min age", env: map[string]string{"THEPROTOCOL_BOND_MIN_AGE": "2s"},
			check: func(t *testing.T, c Config) { require.Equal(t, 2*time.Second, c.Bond.MinAge) }},
		{name: "bond min age without unit", env: map[string]string{"THEPROTOCOL_BOND_MIN_AGE": "30"},
			errs: []string{`THEPROTOCOL_BOND_MIN_AGE="30"`, "duration with a unit"}},
		{name: "bond min age zero", env: map[string]string{"THEPROTOCOL_BOND_MIN_AGE": "0s"},
			errs: []string{"bond-min-age (env THEPROTOCOL_BOND_MIN_AGE)", "positive duration"}},
		{name: "bond recheck negative", env: map[string]string{"THEPROTOCOL_BOND_RECHECK": "-1h"},
			errs: []string{"THEPROTOCOL_BOND_RECHECK", "positive duration", "got -1h0m0s"}},
		{name: "bond min transfers", env: map[string]string{"THEPROTOCOL_BOND_MIN_TRANSFERS": "1"},
			check: func(t *testing.T, c Config) { require.EqualValues(t, 1, c.Bond.MinTransfers) }},
		{name: "bond min transfers zero", env: map[string]string{"THEPROTOCOL_BOND_MIN_TRANSFERS": "0"},
			errs: []string{"THEPROTOCOL_BOND_MIN_TRANSFERS", "integer ≥ 1", "got 0"}},
		{name: "bond min trust bounds", env: map[string]string{"THEPROTOCOL_BOND_MIN_TRUST": "10000"},
			check: func(t *testing.T, c Config) { require.EqualValues(t, 10000, c.Bond.MinTrust) }},
		{name: "bond min trust zero", env: map[string]string{"THEPROTOCOL_BOND_MIN_TRUST": "0"},
			check: func(t *testing.T, c Config) { require.EqualValues(t, 0, c.Bond.MinTrust) }},
		{name: "bond min trust over", env: map[string]string{"THEPROTOCOL_BOND_MIN_TRUST": "10001"},
			errs: []string{"THEPROTOCOL_BOND_MIN_TRUST", "[0, 10000]", "got 10001"}},
		{name: "bond min trust not a number", env: map[string]string{"THEPROTOCOL_BOND_MIN_TRUST": "high"},
			errs: []string{`THEPROTOCOL_BOND_MIN_TRUST="high"`, "decimal integer"}},

		// Cross-registry settlement.
		{name: "xfer batching off", env: map[string]string{"THEPROTOCOL_XFER_MAX_BATCH": "1"},
			check: func(t *testing.T, c Config) { require.Equal(t, 1, c.Xfer.MaxBatch) }},
		{name: "xfer batch at the cap", env: map[string]string{"THEPROTOCOL_XFER_MAX_BATCH": "1000"},
			check: func(t *testing.T, c Config) { require.Equal(t, 1000, c.Xfer.MaxBatch) }},
		{name: "xfer batch over the cap", env: map[string]string{"THEPROTOCOL_XFER_MAX_BATCH": "1001"},
			errs: []string{"xfer-max-batch (env THEPROTOCOL_XFER_MAX_BATCH)", "[1, 1000]", "got 1001"}},
		{name: "xfer batch zero", env: map[string]string{"THEPROTOCOL_XFER_MAX_BATCH": "0"},
			errs: []string{"THEPROTOCOL_XFER_MAX_BATCH", "got 0"}},
		{name: "xfer max age", env: map[string]string{"THEPROTOCOL_XFER_MAX_AGE": "5ms"},
			check: func(t *testing.T, c Config) { require.Equal(t, 5*time.Millisecond, c.Xfer.MaxAge) }},
		{name: "xfer max age zero", env: map[string]string{"THEPROTOCOL_XFER_MAX_AGE": "0"},
			errs: []string{"THEPROTOCOL_XFER_MAX_AGE", "positive duration"}},
		{name: "xfer in flight zero", env: map[string]string{"THEPROTOCOL_XFER_MAX_IN_FLIGHT": "0"},
			errs: []string{"THEPROTOCOL_XFER_MAX_IN_FLIGHT", "integer ≥ 1"}},
		{name: "xfer backlog", env: map[string]string{"THEPROTOCOL_XFER_MAX_BACKLOG": "200"},
			check: func(t *testing.T, c Config) { require.Equal(t, 200, c.Xfer.MaxBacklog) }},
		{name: "xfer backlog negative", env: map[string]string{"THEPROTOCOL_XFER_MAX_BACKLOG": "-1"},
			errs: []string{"THEPROTOCOL_XFER_MAX_BACKLOG", "integer ≥ 0"}},
		{name: "xfer sweep age negative", env: map[string]string{"THEPROTOCOL_XFER_PREPARE_SWEEP_AGE": "-5m"},
			errs: []string{"THEPROTOCOL_XFER_PREPARE_SWEEP_AGE", "positive duration"}},
		{name: "xfer recover every", env: map[string]string{"THEPROTOCOL_XFER_RECOVER_EVERY": "10s"},
			check: func(t *testing.T, c Config) { require.Equal(t, 10*time.Second, c.Xfer.RecoverEvery) }},
		{name: "xfer recover every garbage", env: map[string]string{"THEPROTOCOL_XFER_RECOVER_EVERY": "often"},
			errs: []string{`THEPROTOCOL_XFER_RECOVER_EVERY="often"`, "duration"}},
		{name: "temporal UI trailing slash", env: map[string]string{"THEPROTOCOL_TEMPORAL_UI": "https://ui.example:8080/"},
			check: func(t *testing.T, c Config) { require.Equal(t, "https://ui.example:8080", c.Xfer.TemporalUIBase) }},
		{name: "temporal UI without scheme", env: map[string]string{"THEPROTOCOL_TEMPORAL_UI": "ui.example:8080"},
			errs: []string{"temporal-ui-url (env THEPROTOCOL_TEMPORAL_UI)", "absolute http or https URL"}},

		// Registry.
		{name: "signing key file", env: map[string]string{"THEPROTOCOL_REGISTRY_SIGNING_KEY": "/keys/r.pem"},
			check: func(t *testing.T, c Config) { require.Equal(t, "/keys/r.pem", c.RegistryAPI.KeyFile("/data", "r1")) }},
		{name: "token ttl", env: map[string]string{"THEPROTOCOL_TOKEN_TTL": "1h"},
			check: func(t *testing.T, c Config) { require.Equal(t, time.Hour, c.RegistryAPI.TokenTTL) }},
		{name: "token ttl over the cap", env: map[string]string{"THEPROTOCOL_TOKEN_TTL": "2h"},
			errs: []string{"token-ttl (env THEPROTOCOL_TOKEN_TTL)", "(0, 1h0m0s]", "got 2h0m0s"}},
		{name: "bootstrap ttl zero", env: map[string]string{"THEPROTOCOL_BOOTSTRAP_TTL": "0s"},
			errs: []string{"THEPROTOCOL_BOOTSTRAP_TTL", "(0, 1h0m0s]"}},

		// The process-wide values follow the same rule.
		{name: "port not a number", env: map[string]string{"THEPROTOCOL_TEMPORAL_PORT": "not-a-number"},
			errs: []string{`THEPROTOCOL_TEMPORAL_PORT="not-a-number"`, "decimal integer"}},
		{name: "port out of range", env: map[string]string{"THEPROTOCOL_POSTGRES_PORT": "70000"},
			errs: []string{"postgres-port (env THEPROTOCOL_POSTGRES_PORT)", "[0, 65535]"}},
		{name: "body limit zero", env: map[string]string{"THEPROTOCOL_MAX_BODY_BYTES": "0"},
			errs: []string{"THEPROTOCOL_MAX_BODY_BYTES"}},
		{name: "log level", env: map[string]string{"THEPROTOCOL_LOG_LEVEL": "verbose"},
			errs: []string{"THEPROTOCOL_LOG_LEVEL", "debug, info, warn or error"}},
		{name: "log level any case", env: map[string]string{"THEPROTOCOL_LOG_LEVEL": "DEBUG"},
			check: func(t *testing.T, c Config) { require.Equal(t, "DEBUG", c.LogLevel) }},
		{name: "shutdown timeout negative", env: map[string]string{"THEPROTOCOL_SHUTDOWN_TIMEOUT": "-1s"},
			errs: []string{"THEPROTOCOL_SHUTDOWN_TIMEOUT", "positive duration"}},

		// Everything wrong is reported at once.
		{name: "several problems", env: map[string]string{"THEPROTOCOL_BOND_MIN_AGE": "soon", "THEPROTOCOL_XFER_MAX_BATCH": "0", "THEPROTOCOL_TOKEN_TTL": "2h"},
			errs: []string{"THEPROTOCOL_BOND_MIN_AGE", "THEPROTOCOL_XFER_MAX_BATCH", "THEPROTOCOL_TOKEN_TTL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.env)
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

func TestSettingsFlagsOverrideEnvironment(t *testing.T) {
	c, err := load(t, map[string]string{"THEPROTOCOL_XFER_MAX_BATCH": "5", "THEPROTOCOL_BOND_MIN_AGE": "1h"},
		"-xfer-max-batch", "20", "-bond-recheck", "90s", "-token-ttl", "30m", "-registry-signing-key", "/k.pem")
	require.NoError(t, err)
	require.Equal(t, 20, c.Xfer.MaxBatch, "flag over environment")
	require.Equal(t, time.Hour, c.Bond.MinAge, "environment over default")
	require.Equal(t, 90*time.Second, c.Bond.RecheckEvery)
	require.Equal(t, 30*time.Minute, c.RegistryAPI.TokenTTL)
	require.Equal(t, "/k.pem", c.RegistryAPI.SigningKeyFile)

	_, err = load(t, nil, "-bond-min-trust", "12000")
	require.ErrorContains(t, err, "bond-min-trust (env THEPROTOCOL_BOND_MIN_TRUST) must be basis points")

	// A variable that does not parse fails even when a flag overrides it:
	// the typo would otherwise bite the next run without the flag.
	_, err = load(t, map[string]string{"THEPROTOCOL_XFER_MAX_AGE": "fast"}, "-xfer-max-age", "1s")
	require.ErrorContains(t, err, `THEPROTOCOL_XFER_MAX_AGE="fast"`)
}

func TestRegistryKeyFileDefault(t *testing.T) {
	require.Equal(t, "/data/alpha-main/registry-signing-key.pem", DefaultRegistrySettings().KeyFile("/data", "alpha-main"))
}

// Every flag names its variable in its help text, and that variable is the
// one Defaults reads: a garbage value either shows up in the flag or fails
// the start naming the variable.
func TestEveryFlagReadsTheVariableItNames(t *testing.T) {
	cleanEnv(t)
	base := Defaults()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	base.RegisterFlags(fs)
	envOf := regexp.MustCompile(`\(env ([A-Z_]+)\)`)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		m := envOf.FindStringSubmatch(f.Usage)
		require.NotNil(t, m, "flag -%s does not name its environment variable", f.Name)
		n++
		t.Run(f.Name, func(t *testing.T) {
			t.Setenv(m[1], "x-garbage-1")
			c := Defaults()
			got := flag.NewFlagSet("y", flag.ContinueOnError)
			c.RegisterFlags(got)
			if err := c.Validate(); err != nil {
				require.Contains(t, err.Error(), m[1])
				return
			}
			require.Equal(t, "x-garbage-1", got.Lookup(f.Name).DefValue, "-%s does not follow %s", f.Name, m[1])
		})
	})
	require.Greater(t, n, 25)
}

func TestMaxXferBatchIsTheWorkflowCap(t *testing.T) {
	require.Equal(t, workflows.MaxSettlementBatch, MaxXferBatch)
}
