// Package config holds process configuration: command-line flags with
// THEPROTOCOL_* environment-variable defaults, and the topology file that
// names frames, registries, their ports and roles.
//
// Precedence: flag > environment variable > built-in default. Every listener
// binds to ListenHost, which defaults to 127.0.0.1.
package config

import (
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
}

// Defaults returns the configuration with every default filled in, then
// overridden by THEPROTOCOL_* environment variables.
func Defaults() Config {
	return Config{
		DataDir:         Env("THEPROTOCOL_DATA_DIR", ".data"),
		TopologyFile:    Env("THEPROTOCOL_TOPOLOGY", ""),
		ListenHost:      Env("THEPROTOCOL_LISTEN_HOST", "127.0.0.1"),
		PostgresURL:     Env("THEPROTOCOL_POSTGRES_URL", ""),
		PostgresPort:    EnvInt("THEPROTOCOL_POSTGRES_PORT", 55432),
		TemporalAddr:    Env("THEPROTOCOL_TEMPORAL_ADDR", ""),
		TemporalPort:    EnvInt("THEPROTOCOL_TEMPORAL_PORT", 7233),
		TemporalUIPort:  EnvInt("THEPROTOCOL_TEMPORAL_UI_PORT", 8233),
		TemporalBin:     Env("THEPROTOCOL_TEMPORAL_BIN", "bin/temporal"),
		KafkaBrokers:    Env("KAFKA_BROKERS", ""),
		KafkaPort:       EnvInt("THEPROTOCOL_KAFKA_PORT", 19092),
		LogLevel:        Env("THEPROTOCOL_LOG_LEVEL", "info"),
		LogFormat:       Env("THEPROTOCOL_LOG_FORMAT", "text"),
		MaxBodyBytes:    int64(EnvInt("THEPROTOCOL_MAX_BODY_BYTES", 1<<20)),
		ShutdownTimeout: EnvDuration("THEPROTOCOL_SHUTDOWN_TIMEOUT", 15*time.Second),
	}
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
}

// Validate checks values that flags cannot type-check.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("data-dir must not be empty")
	}
	if c.MaxBodyBytes <= 0 || c.MaxBodyBytes > 64<<20 {
		return fmt.Errorf("max-body-bytes must be in (0, 64MiB], got %d", c.MaxBodyBytes)
	}
	for name, p := range map[string]int{"postgres-port": c.PostgresPort, "temporal-port": c.TemporalPort, "temporal-ui-port": c.TemporalUIPort, "kafka-port": c.KafkaPort} {
		if p < 0 || p > 65535 {
			return fmt.Errorf("%s out of range: %d", name, p)
		}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log-format must be text or json, got %q", c.LogFormat)
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

// EnvInt is Env for integers; an unparsable value is reported on stderr and
// the default is used, so a typo never silently becomes 0.
func EnvInt(key string, def int) int {
	v := Env(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "config: ignoring %s=%q: not an integer\n", key, v)
		return def
	}
	return n
}

// EnvDuration is Env for durations (Go syntax, e.g. 15s).
func EnvDuration(key string, def time.Duration) time.Duration {
	v := Env(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "config: ignoring %s=%q: not a duration\n", key, v)
		return def
	}
	return d
}
