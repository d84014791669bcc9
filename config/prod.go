package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// This file holds the settings a production deployment needs and `dev` does
// without: where the nodes' SPIFFE identities come from, TLS and
// credentials for Temporal and Kafka, and the reverse proxies whose
// X-Forwarded-For is believed. The TLS configurations and client options
// they become are built in prod_clients.go.

// Identity sources of a node's X.509 SVIDs (-identity).
const (
	// IdentityDevCA issues SVIDs from the on-disk dev CA under the data
	// directory: for a laptop and tests, never for production.
	IdentityDevCA = "devca"
	// IdentitySPIRE fetches them from the SPIRE agent's Workload API.
	IdentitySPIRE = "spire"
)

// EnvSPIFFEEndpointSocket is the standard variable naming the Workload API
// (e.g. unix:///run/spire/agent.sock); its presence alone selects SPIRE for
// `serve`.
const EnvSPIFFEEndpointSocket = "SPIFFE_ENDPOINT_SOCKET"

// DeploySettings are the production-facing settings of every node.
type DeploySettings struct {
	Identity IdentitySettings
	Temporal TemporalClientSettings
	Kafka    KafkaSettings
	// TrustedProxies is THEPROTOCOL_TRUSTED_PROXIES: comma-separated IP
	// addresses or CIDR ranges of the reverse proxies in front of the API.
	// Empty (the default): no proxy is trusted, clients are known by their
	// TCP address, and X-Forwarded-For is ignored.
	TrustedProxies string
	// PeersByName is THEPROTOCOL_PEERS_BY_NAME: a node reaches the other
	// nodes of its frame (peer TEGs, the EventStore) at a host named after
	// their registry ID, as when each registry runs in its own container
	// named so (deploy/compose.yaml). Default false: at this node's listen
	// host, every node of the frame on one machine.
	PeersByName bool
}

// IdentitySettings choose the source of the nodes' SVIDs.
type IdentitySettings struct {
	// Source is THEPROTOCOL_IDENTITY: IdentityDevCA, IdentitySPIRE or empty
	// (see Resolve).
	Source string
	// SPIFFEEndpointSocket is SPIFFE_ENDPOINT_SOCKET, the Workload API
	// address (unix:///path or tcp://ip:port).
	SPIFFEEndpointSocket string
	// SPIREStartTimeout is THEPROTOCOL_SPIRE_START_TIMEOUT (default 30s):
	// how long a node waits for its first SVID before failing to start.
	SPIREStartTimeout time.Duration
}

// TemporalClientSettings secure the connection to an external Temporal
// frontend. The embedded dev server speaks plain gRPC and ignores them.
type TemporalClientSettings struct {
	TLS TLSFiles // THEPROTOCOL_TEMPORAL_TLS*, see TLSFiles
	// APIKey is THEPROTOCOL_TEMPORAL_API_KEY, sent as a bearer token; read
	// from APIKeyFile (THEPROTOCOL_TEMPORAL_API_KEY_FILE) when that is set
	// instead. A key turns TLS on (system roots unless TLS.CAFile).
	APIKey     string
	APIKeyFile string
}

// KafkaSettings secure the connections of every Kafka client of a node:
// relays, the EventStore consumer, reactors and topic creation. The embedded
// broker ignores them.
type KafkaSettings struct {
	TLS TLSFiles // THEPROTOCOL_KAFKA_TLS*, see TLSFiles
	// SASLMechanism is THEPROTOCOL_KAFKA_SASL_MECHANISM: empty (none),
	// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	SASLMechanism string
	SASLUser      string // THEPROTOCOL_KAFKA_SASL_USER
	// SASLPassword is THEPROTOCOL_KAFKA_SASL_PASSWORD, or the content of
	// SASLPasswordFile (THEPROTOCOL_KAFKA_SASL_PASSWORD_FILE).
	SASLPassword     string
	SASLPasswordFile string
}

// SASL mechanisms (KafkaSettings.SASLMechanism).
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// TLSFiles is one client's TLS: PEM files on disk. Setting any field turns
// TLS on; Enabled alone turns it on with the system's roots.
type TLSFiles struct {
	Enabled    bool
	CAFile     string // roots to verify the server with; empty: the system's
	CertFile   string // client certificate chain (mutual TLS), with KeyFile
	KeyFile    string
	ServerName string // expected name in the server certificate; empty: the dialled host
}

// On reports whether TLS is configured.
func (t TLSFiles) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

func (s *DeploySettings) fromEnv(r *envReader) {
	s.Identity.Source = Env("THEPROTOCOL_IDENTITY", "")
	s.Identity.SPIFFEEndpointSocket = Env(EnvSPIFFEEndpointSocket, "")
	s.Identity.SPIREStartTimeout = r.duration("THEPROTOCOL_SPIRE_START_TIMEOUT", 30*time.Second)
	s.Temporal.TLS.fromEnv(r, "THEPROTOCOL_TEMPORAL_TLS")
	s.Temporal.APIKey = Env("THEPROTOCOL_TEMPORAL_API_KEY", "")
	s.Temporal.APIKeyFile = Env("THEPROTOCOL_TEMPORAL_API_KEY_FILE", "")
	s.Kafka.TLS.fromEnv(r, "THEPROTOCOL_KAFKA_TLS")
	s.Kafka.SASLMechanism = Env("THEPROTOCOL_KAFKA_SASL_MECHANISM", "")
	s.Kafka.SASLUser = Env("THEPROTOCOL_KAFKA_SASL_USER", "")
	s.Kafka.SASLPassword = Env("THEPROTOCOL_KAFKA_SASL_PASSWORD", "")
	s.Kafka.SASLPasswordFile = Env("THEPROTOCOL_KAFKA_SASL_PASSWORD_FILE", "")
	s.TrustedProxies = Env("THEPROTOCOL_TRUSTED_PROXIES", "")
	s.PeersByName = envBool(r, "THEPROTOCOL_PEERS_BY_NAME", false)
}

func (t *TLSFiles) fromEnv(r *envReader, prefix string) {
	t.Enabled = envBool(r, prefix, false)
	t.CAFile = Env(prefix+"_CA", "")
	t.CertFile = Env(prefix+"_CERT", "")
	t.KeyFile = Env(prefix+"_KEY", "")
	t.ServerName = Env(prefix+"_SERVER_NAME", "")
}

// Secrets (the API key, the SASL password) have no flag: a flag's value is
// visible to every user of the machine in the process list. Their files do.
func (s *DeploySettings) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.Identity.Source, "identity", s.Identity.Source, "source of the nodes' SPIFFE SVIDs: spire (Workload API) or devca (on-disk dev CA, not for production); empty: spire when SPIFFE_ENDPOINT_SOCKET is set, else `serve` refuses to start and `dev` uses devca (env THEPROTOCOL_IDENTITY)")
	fs.StringVar(&s.Identity.SPIFFEEndpointSocket, "spiffe-endpoint-socket", s.Identity.SPIFFEEndpointSocket, "SPIRE Workload API address, unix:///path or tcp://ip:port (env SPIFFE_ENDPOINT_SOCKET)")
	fs.DurationVar(&s.Identity.SPIREStartTimeout, "spire-start-timeout", s.Identity.SPIREStartTimeout, "how long a node waits for its first SVID from SPIRE (env THEPROTOCOL_SPIRE_START_TIMEOUT)")
	s.Temporal.TLS.registerFlags(fs, "temporal-tls", "THEPROTOCOL_TEMPORAL_TLS", "Temporal frontend")
	fs.StringVar(&s.Temporal.APIKeyFile, "temporal-api-key-file", s.Temporal.APIKeyFile, "file holding the Temporal API key; the key itself may be given in THEPROTOCOL_TEMPORAL_API_KEY instead (env THEPROTOCOL_TEMPORAL_API_KEY_FILE)")
	s.Kafka.TLS.registerFlags(fs, "kafka-tls", "THEPROTOCOL_KAFKA_TLS", "Kafka brokers")
	fs.StringVar(&s.Kafka.SASLMechanism, "kafka-sasl-mechanism", s.Kafka.SASLMechanism, "Kafka SASL mechanism: PLAIN (needs TLS), SCRAM-SHA-256 or SCRAM-SHA-512; empty: none (env THEPROTOCOL_KAFKA_SASL_MECHANISM)")
	fs.StringVar(&s.Kafka.SASLUser, "kafka-sasl-user", s.Kafka.SASLUser, "Kafka SASL user name (env THEPROTOCOL_KAFKA_SASL_USER)")
	fs.StringVar(&s.Kafka.SASLPasswordFile, "kafka-sasl-password-file", s.Kafka.SASLPasswordFile, "file holding the Kafka SASL password; the password itself may be given in THEPROTOCOL_KAFKA_SASL_PASSWORD instead (env THEPROTOCOL_KAFKA_SASL_PASSWORD_FILE)")
	fs.StringVar(&s.TrustedProxies, "trusted-proxies", s.TrustedProxies, "comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-For names the client; empty: trust none (env THEPROTOCOL_TRUSTED_PROXIES)")
	fs.BoolVar(&s.PeersByName, "peers-by-name", s.PeersByName, "reach the frame's other nodes (peer TEGs, the EventStore) at a host named after their registry ID, one host or container per registry; default: this node's listen host (env THEPROTOCOL_PEERS_BY_NAME)")
}

func (t *TLSFiles) registerFlags(fs *flag.FlagSet, name, env, peer string) {
	fs.BoolVar(&t.Enabled, name, t.Enabled, fmt.Sprintf("connect to the %s over TLS (implied by any other -%s-* setting) (env %s)", peer, name, env))
	fs.StringVar(&t.CAFile, name+"-ca", t.CAFile, fmt.Sprintf("PEM roots that sign the %s' certificates; empty: the system's (env %s_CA)", peer, env))
	fs.StringVar(&t.CertFile, name+"-cert", t.CertFile, fmt.Sprintf("PEM client certificate chain for mutual TLS with the %s, with -%s-key (env %s_CERT)", peer, name, env))
	fs.StringVar(&t.KeyFile, name+"-key", t.KeyFile, fmt.Sprintf("PEM private key of -%s-cert (env %s_KEY)", name, env))
	fs.StringVar(&t.ServerName, name+"-server-name", t.ServerName, fmt.Sprintf("name the %s' certificates must carry; empty: the dialled host (env %s_SERVER_NAME)", peer, env))
}

// Validate reports every setting that is malformed, inconsistent or names a
// file that cannot be used: a bad path fails the start, not the first
// connection minutes later.
func (s DeploySettings) Validate() error {
	errs := []error{s.Identity.Validate(), s.Temporal.Validate(), s.Kafka.Validate()}
	if _, err := ParseTrustedProxies(s.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("trusted-proxies (env THEPROTOCOL_TRUSTED_PROXIES): %w", err))
	}
	return errors.Join(errs...)
}

// Validate checks the source and the Workload API address.
func (s IdentitySettings) Validate() error {
	var errs []error
	switch s.Source {
	case "", IdentityDevCA, IdentitySPIRE:
	default:
		errs = append(errs, fmt.Errorf("identity (env THEPROTOCOL_IDENTITY) must be %s or %s, got %q", IdentitySPIRE, IdentityDevCA, s.Source))
	}
	if s.SPIFFEEndpointSocket != "" {
		if err := checkWorkloadAPIAddr(s.SPIFFEEndpointSocket); err != nil {
			errs = append(errs, fmt.Errorf("spiffe-endpoint-socket (env %s): %w", EnvSPIFFEEndpointSocket, err))
		}
	} else if s.Source == IdentitySPIRE {
		errs = append(errs, fmt.Errorf("identity %s needs the Workload API address: set -spiffe-endpoint-socket or %s (e.g. unix:///run/spire/agent.sock)", IdentitySPIRE, EnvSPIFFEEndpointSocket))
	}
	errs = append(errs, positive("spire-start-timeout", "THEPROTOCOL_SPIRE_START_TIMEOUT", s.SPIREStartTimeout))
	return errors.Join(errs...)
}

// checkWorkloadAPIAddr accepts the two address forms of the Workload API:
// unix:///absolute/path and tcp://ip:port.
func checkWorkloadAPIAddr(addr string) error {
	u, err := url.Parse(addr)
	if err != nil {
		return fmt.Errorf("want unix:///path or tcp://ip:port, got %q", addr)
	}
	switch u.Scheme {
	case "unix":
		if u.Opaque != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return fmt.Errorf("want unix:///absolute/path, got %q", addr)
		}
	case "tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || net.ParseIP(host) == nil || port == "" || u.Path != "" {
			return fmt.Errorf("want tcp://ip:port, got %q", addr)
		}
	default:
		return fmt.Errorf("want unix:///path or tcp://ip:port, got %q", addr)
	}
	return nil
}

// ErrNoIdentitySource is why `serve` refuses to start when neither SPIRE nor
// the dev CA was asked for.
var ErrNoIdentitySource = errors.New("no identity source: set " + EnvSPIFFEEndpointSocket +
	" (or -spiffe-endpoint-socket) to take SVIDs from the SPIRE Workload API, or pass -identity=" + IdentityDevCA +
	" (THEPROTOCOL_IDENTITY=" + IdentityDevCA + ") to use the on-disk dev CA, which is not for production")

// Resolve returns the identity source a command uses: the one asked for;
// else SPIRE when a Workload API address is set; else the dev CA when
// devDefault (the `dev` command), and ErrNoIdentitySource otherwise.
func (s IdentitySettings) Resolve(devDefault bool) (string, error) {
	switch {
	case s.Source != "":
		return s.Source, nil
	case devDefault:
		// dev is the laptop stack: a socket variable left in the shell
		// does not move it off its own CA unless asked.
		return IdentityDevCA, nil
	case s.SPIFFEEndpointSocket != "":
		return IdentitySPIRE, nil
	default:
		return "", ErrNoIdentitySource
	}
}

// Validate checks the TLS files and the API key.
func (s TemporalClientSettings) Validate() error {
	errs := []error{s.TLS.validate("temporal-tls", "THEPROTOCOL_TEMPORAL_TLS")}
	if s.APIKey != "" && s.APIKeyFile != "" {
		errs = append(errs, errors.New("temporal API key given twice: set THEPROTOCOL_TEMPORAL_API_KEY or temporal-api-key-file (env THEPROTOCOL_TEMPORAL_API_KEY_FILE), not both"))
	} else if _, err := s.apiKey(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// apiKey is the configured key, read from its file when given that way.
func (s TemporalClientSettings) apiKey() (string, error) {
	if s.APIKeyFile == "" {
		return s.APIKey, nil
	}
	return readSecret(s.APIKeyFile, "temporal-api-key-file (env THEPROTOCOL_TEMPORAL_API_KEY_FILE)")
}

// Validate checks the TLS files and the SASL settings.
func (s KafkaSettings) Validate() error {
	errs := []error{s.TLS.validate("kafka-tls", "THEPROTOCOL_KAFKA_TLS")}
	const who = "kafka-sasl-mechanism (env THEPROTOCOL_KAFKA_SASL_MECHANISM)"
	switch s.mechanism() {
	case "":
		if s.SASLUser != "" || s.SASLPassword != "" || s.SASLPasswordFile != "" {
			errs = append(errs, fmt.Errorf("kafka SASL user or password (env THEPROTOCOL_KAFKA_SASL_USER, THEPROTOCOL_KAFKA_SASL_PASSWORD, THEPROTOCOL_KAFKA_SASL_PASSWORD_FILE) set without %s", who))
		}
		return errors.Join(errs...)
	case SASLPlain:
		if !s.TLS.On() {
			errs = append(errs, fmt.Errorf("%s %s sends the password in clear: turn Kafka TLS on (-kafka-tls, env THEPROTOCOL_KAFKA_TLS) or use SCRAM", who, SASLPlain))
		}
	case SASLScramSHA256, SASLScramSHA512:
	default:
		return errors.Join(append(errs, fmt.Errorf("%s must be %s, %s or %s, got %q", who, SASLPlain, SASLScramSHA256, SASLScramSHA512, s.SASLMechanism))...)
	}
	if s.SASLUser == "" {
		errs = append(errs, fmt.Errorf("%s %s needs a user: kafka-sasl-user (env THEPROTOCOL_KAFKA_SASL_USER)", who, s.mechanism()))
	}
	switch pw, err := s.password(); {
	case s.SASLPassword != "" && s.SASLPasswordFile != "":
		errs = append(errs, errors.New("kafka SASL password given twice: set THEPROTOCOL_KAFKA_SASL_PASSWORD or kafka-sasl-password-file (env THEPROTOCOL_KAFKA_SASL_PASSWORD_FILE), not both"))
	case err != nil:
		errs = append(errs, err)
	case pw == "":
		errs = append(errs, fmt.Errorf("%s %s needs a password: THEPROTOCOL_KAFKA_SASL_PASSWORD or kafka-sasl-password-file (env THEPROTOCOL_KAFKA_SASL_PASSWORD_FILE)", who, s.mechanism()))
	}
	return errors.Join(errs...)
}

func (s KafkaSettings) mechanism() string { return strings.ToUpper(strings.TrimSpace(s.SASLMechanism)) }

func (s KafkaSettings) password() (string, error) {
	if s.SASLPasswordFile == "" {
		return s.SASLPassword, nil
	}
	return readSecret(s.SASLPasswordFile, "kafka-sasl-password-file (env THEPROTOCOL_KAFKA_SASL_PASSWORD_FILE)")
}

// readSecret reads a one-line secret file (a trailing newline is not part of
// the secret).
func readSecret(path, who string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", who, err)
	}
	secret := strings.TrimRight(string(raw), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s: %s is empty", who, path)
	}
	return secret, nil
}

// validate loads what the files name, exactly as the client will.
func (t TLSFiles) validate(name, env string) error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%s-cert (env %s_CERT) and %s-key (env %s_KEY) go together: set both for mutual TLS, or neither", name, env, name, env)
	}
	_, err := t.load(name, env)
	return err
}

// ParseTrustedProxies splits a comma-separated list of IP addresses and
// CIDR ranges, refusing anything else.
func ParseTrustedProxies(list string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if strings.Contains(p, "/") {
			if _, _, err := net.ParseCIDR(p); err != nil {
				return nil, fmt.Errorf("%q is not a CIDR range such as 10.0.0.0/8", p)
			}
		} else if net.ParseIP(p) == nil {
			return nil, fmt.Errorf("%q is not an IP address or a CIDR range", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// TrustedProxyList is TrustedProxies split (Validate has checked it).
func (s DeploySettings) TrustedProxyList() []string {
	out, _ := ParseTrustedProxies(s.TrustedProxies)
	return out
}

func envBool(r *envReader, key string, def bool) bool {
	v := Env(key, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: want true or false", key, v))
		return def
	}
	return b
}
