// Package config holds process configuration: command-line flags with
// THEPROTOCOL_* environment-variable defaults, and the topology file that
// names frames, registries, their ports and roles.
//
// Precedence: flag > environment variable > built-in default. Every listener
// binds to ListenHost, which defaults to 127.0.0.1.
//
// Configuration is read here and nowhere else, once at start: Defaults reads
// the environment, RegisterFlags lets flags override it, and Validate fails
// on any value that does not parse or is out of range, naming the flag, its
// variable and the accepted form. Nothing is silently replaced by a default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the process-wide configuration shared by every subcommand.
type Config struct {
	DataDir      string // state for the embedded stack (.data)
	TopologyFile string // empty: the embedded demo topology
	ListenHost   string // bind address of every listener

	// PostgresURL, when set, points at an existing cluster (a superuser or a
	// role allowed to CREATE DATABASE); empty means run the embedded cluster.
	PostgresURL  string
	PostgresPort int // port of the embedded cluster

	// TemporalAddr, when set, is an existing frontend (host:port); empty means
	// run the embedded dev server on TemporalPort with its UI on TemporalUIPort.
	TemporalAddr   string
	TemporalPort   int
	TemporalUIPort int
	TemporalBin    string // path to the temporal CLI (bin/temporal)

	// KafkaBrokers, when set (KAFKA_BROKERS), is a comma-separated list of an
	// external Kafka/Redpanda; empty means run the embedded kfake broker on
	// KafkaPort.
	KafkaBrokers string
	KafkaPort    int

	LogLevel  string // debug, info, warn, error
	LogFormat string // text or json

	MaxBodyBytes    int64         // request body limit of every API
	ShutdownTimeout time.Duration // graceful shutdown budget

	// The roles' own settings, handed to every node.
	Bond        BondSettings       // reputation bond maturity
	Xfer        XferSettings       // cross-registry settlement
	RegistryAPI RegistrySettings   // registry signing key and token lifetimes
	Peers       PeerSettings       // limits on peer registries (exposure caps)
	Recon       ReconSettings      // balance checkpoints and reconciliation
	Bridge      BridgeSettings     // the cross-frame bridge
	EventAuth   EventAuthSettings  // event signing key and the EventStore's trusted keys
	Dispute     DisputeSettings    // dispute windows and fee (dispute.go)
	Governance  GovernanceSettings // proposal limits and the veto window
	Split       SplitSettings      // where a split registry's other roles run (split.go)
	Discovery   DiscoverySettings  // the federation graph walk (discovery.go)
	Demo        DemoSettings       // dev's demonstration agents (demo.go)

	// Reputation: the reputation runs on the EventStore's node.
	Reputation ReputationSettings

	// Deploy: identity source, Temporal/Kafka TLS and credentials, trusted
	// proxies (prod.go).
	Deploy DeploySettings

	// envErr holds the environment values that did not parse; Validate
	// reports them.
	envErr error

	// FedSync: the signed agent-card sync and peering requests.
	FedSync FederationSyncSettings
}

// Defaults returns the configuration with every default filled in, then
// overridden by THEPROTOCOL_* environment variables. A variable that does not
// parse keeps the default here and makes Validate fail, even when a flag
// overrides it: a typo in the environment is never silently ignored.
func Defaults() Config {
	r := &envReader{}
	c := Config{
		DataDir:         Env("THEPROTOCOL_DATA_DIR", ".data"),
		TopologyFile:    Env("THEPROTOCOL_TOPOLOGY", ""),
		ListenHost:      Env("THEPROTOCOL_LISTEN_HOST", "127.0.0.1"),
		PostgresURL:     Env("THEPROTOCOL_POSTGRES_URL", ""),
		PostgresPort:    r.int("THEPROTOCOL_POSTGRES_PORT", 55432),
		TemporalAddr:    Env("THEPROTOCOL_TEMPORAL_ADDR", ""),
		TemporalPort:    r.int("THEPROTOCOL_TEMPORAL_PORT", 7233),
		TemporalUIPort:  r.int("THEPROTOCOL_TEMPORAL_UI_PORT", 8233),
		TemporalBin:     Env("THEPROTOCOL_TEMPORAL_BIN", "bin/temporal"),
		KafkaBrokers:    Env("KAFKA_BROKERS", ""),
		KafkaPort:       r.int("THEPROTOCOL_KAFKA_PORT", 19092),
		LogLevel:        Env("THEPROTOCOL_LOG_LEVEL", "info"),
		LogFormat:       Env("THEPROTOCOL_LOG_FORMAT", "text"),
		MaxBodyBytes:    r.int64("THEPROTOCOL_MAX_BODY_BYTES", 1<<20),
		ShutdownTimeout: r.duration("THEPROTOCOL_SHUTDOWN_TIMEOUT", 15*time.Second),
	}
	c.Bond.fromEnv(r)
	c.Xfer.fromEnv(r)
	c.RegistryAPI.fromEnv(r)
	c.Peers.fromEnv(r)
	c.Deploy.fromEnv(r)
	c.Recon.fromEnv(r)
	c.Bridge.fromEnv(r)
	c.EventAuth.fromEnv(r)
	c.FedSync.fromEnv(r)
	c.Dispute.fromEnv(r)
	c.Demo.fromEnv(r)
	c.Reputation.fromEnv(r)
	c.Governance.fromEnv(r)
	c.Split.fromEnv(r)
	c.Discovery.fromEnv(r)
	c.envErr = errors.Join(r.errs...)
	return c
}

// RegisterFlags binds the shared flags to fs, using c's current values as the
// defaults (so environment variables show up as defaults in -help).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "state directory of the embedded stack (env THEPROTOCOL_DATA_DIR)")
	fs.StringVar(&c.TopologyFile, "topology", c.TopologyFile, "topology JSON file; empty uses the embedded demo topology (env THEPROTOCOL_TOPOLOGY)")
	fs.StringVar(&c.ListenHost, "listen-host", c.ListenHost, "address every listener binds (env THEPROTOCOL_LISTEN_HOST)")
	fs.StringVar(&c.PostgresURL, "postgres-url", c.PostgresURL, "existing PostgreSQL admin URL; empty runs the embedded cluster (env THEPROTOCOL_POSTGRES_URL)")
	fs.IntVar(&c.PostgresPort, "postgres-port", c.PostgresPort, "port of the embedded PostgreSQL cluster (env THEPROTOCOL_POSTGRES_PORT)")
	fs.StringVar(&c.TemporalAddr, "temporal-addr", c.TemporalAddr, "existing Temporal frontend host:port; empty runs the dev server (env THEPROTOCOL_TEMPORAL_ADDR)")
	fs.IntVar(&c.TemporalPort, "temporal-port", c.TemporalPort, "gRPC port of the embedded Temporal dev server (env THEPROTOCOL_TEMPORAL_PORT)")
	fs.IntVar(&c.TemporalUIPort, "temporal-ui-port", c.TemporalUIPort, "Web UI port of the embedded Temporal dev server (env THEPROTOCOL_TEMPORAL_UI_PORT)")
	fs.StringVar(&c.TemporalBin, "temporal-bin", c.TemporalBin, "path of the temporal CLI (env THEPROTOCOL_TEMPORAL_BIN)")
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", c.KafkaBrokers, "external Kafka brokers, comma-separated; empty runs the embedded broker (env KAFKA_BROKERS)")
	fs.IntVar(&c.KafkaPort, "kafka-port", c.KafkaPort, "port of the embedded Kafka broker (env THEPROTOCOL_KAFKA_PORT)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (env THEPROTOCOL_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json (env THEPROTOCOL_LOG_FORMAT)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "request body limit in bytes (env THEPROTOCOL_MAX_BODY_BYTES)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "graceful shutdown budget (env THEPROTOCOL_SHUTDOWN_TIMEOUT)")
	c.Bond.registerFlags(fs)
	c.Xfer.registerFlags(fs)
	c.RegistryAPI.registerFlags(fs)
	c.Peers.registerFlags(fs)
	c.Deploy.registerFlags(fs)
	c.Recon.registerFlags(fs)
	c.Bridge.registerFlags(fs)
	c.EventAuth.registerFlags(fs)
	c.FedSync.registerFlags(fs)
	c.Dispute.registerFlags(fs)
	c.Demo.registerFlags(fs)
	c.Reputation.RegisterFlags(fs)
	c.Governance.registerFlags(fs)
	c.Split.registerFlags(fs)
	c.Discovery.registerFlags(fs)
}

// Validate checks every value once flags are parsed and reports all the
// problems at once (environment values that did not parse first). It also
// normalises values that have one canonical form (the UI URL's trailing
// slash).
func (c *Config) Validate() error {
	c.Xfer.normalize()
	errs := []error{c.envErr}
	if c.DataDir == "" {
		errs = append(errs, fmt.Errorf("data-dir (env THEPROTOCOL_DATA_DIR) must not be empty"))
	}
	errs = append(errs, intRange("max-body-bytes", "THEPROTOCOL_MAX_BODY_BYTES", c.MaxBodyBytes, 1, 64<<20, "a byte count in [1, 67108864] (64 MiB)"))
	for _, p := range []struct {
		flag, env string
		port      int
	}{
		{"postgres-port", "THEPROTOCOL_POSTGRES_PORT", c.PostgresPort},
		{"temporal-port", "THEPROTOCOL_TEMPORAL_PORT", c.TemporalPort},
		{"temporal-ui-port", "THEPROTOCOL_TEMPORAL_UI_PORT", c.TemporalUIPort},
		{"kafka-port", "THEPROTOCOL_KAFKA_PORT", c.KafkaPort},
	} {
		errs = append(errs, intRange(p.flag, p.env, p.port, 0, 65535, "a TCP port in [0, 65535] (0 = pick a free one)"))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level (env THEPROTOCOL_LOG_LEVEL) must be debug, info, warn or error, got %q", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log-format (env THEPROTOCOL_LOG_FORMAT) must be text or json, got %q", c.LogFormat))
	}
	errs = append(errs, positive("shutdown-timeout", "THEPROTOCOL_SHUTDOWN_TIMEOUT", c.ShutdownTimeout),
		c.Bond.Validate(), c.Xfer.Validate(), c.RegistryAPI.Validate(), c.Peers.Validate(), c.Deploy.Validate(), c.Recon.Validate(), c.EventAuth.Validate())
	errs = append(errs, c.Dispute.Validate())
	errs = append(errs, c.FedSync.Validate())
	errs = append(errs, c.Demo.Validate())
	errs = append(errs, c.Reputation.Validate())
	errs = append(errs, c.Governance.Validate())
	errs = append(errs, c.Discovery.Validate())
	errs = append(errs, c.Bridge.Validate())
	errs = append(errs, c.Split.Validate())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return nil
}

// KafkaBrokerList splits KafkaBrokers.
func (c *Config) KafkaBrokerList() []string {
	var out []string
	for _, b := range strings.Split(c.KafkaBrokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Env returns the environment variable key, or def when it is unset or empty.
func Env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// envReader reads typed environment variables and collects the ones that
// do not parse, each named with the form it should have.
type envReader struct{ errs []error }

func (r *envReader) int64(key string, def int64) int64 {
	v := Env(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want a decimal integer such as %d", key, v, def))
		return def
	}
	return n
}

func (r *envReader) int(key string, def int) int {
	return int(r.int64(key, int64(def)))
}

func (r *envReader) duration(key string, def time.Duration) time.Duration {
	v := Env(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want a duration with a unit, such as 250ms, 90s, 15m or 720h (default %s)", key, v, def))
		return def
	}
	return d
}
