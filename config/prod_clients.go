package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.temporal.io/sdk/client"
)

// The one place the Temporal and Kafka settings become client options, so
// every client of a node (and `serve`'s set-up steps) connects the same way.

// Connection returns the Temporal client's TLS configuration and
// credentials (zero values: plain gRPC, no key). Put them in
// client.Options.ConnectionOptions and client.Options.Credentials.
func (s TemporalClientSettings) Connection() (client.ConnectionOptions, client.Credentials, error) {
	var conn client.ConnectionOptions
	cfg, err := s.TLS.load("temporal-tls", "THEPROTOCOL_TEMPORAL_TLS")
	if err != nil {
		return conn, nil, err
	}
	conn.TLS = cfg
	key, err := s.apiKey()
	if err != nil {
		return conn, nil, err
	}
	var creds client.Credentials
	if key != "" {
		// The SDK turns TLS on (system roots) for a key when conn.TLS is
		// nil: a key never travels in clear.
		creds = client.NewAPIKeyStaticCredentials(key)
	}
	return conn, creds, nil
}

// ClientOpts returns the franz-go options every Kafka client of a node adds
// to its own: TLS and SASL as configured (none: no options).
func (s KafkaSettings) ClientOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	cfg, err := s.TLS.load("kafka-tls", "THEPROTOCOL_KAFKA_TLS")
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		// franz-go clones it per broker and fills in ServerName from the
		// broker's host when it is empty.
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	mech := s.mechanism()
	if mech == "" {
		return opts, nil
	}
	pw, err := s.password()
	if err != nil {
		return nil, err
	}
	switch mech {
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: s.SASLUser, Pass: pw}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: s.SASLUser, Pass: pw}.AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: s.SASLUser, Pass: pw}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka-sasl-mechanism (env THEPROTOCOL_KAFKA_SASL_MECHANISM): unknown mechanism %q", s.SASLMechanism)
	}
	return opts, nil
}

// load builds the client TLS configuration the files describe (nil when TLS
// is off). name and env name the settings in errors.
func (t TLSFiles) load(name, env string) (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		raw, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s-ca (env %s_CA): %w", name, env, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw) {
			return nil, fmt.Errorf("%s-ca (env %s_CA): %s holds no PEM certificate", name, env, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		kp := &keyPair{certFile: t.CertFile, keyFile: t.KeyFile}
		if _, err := kp.get(); err != nil {
			return nil, fmt.Errorf("%s-cert/%s-key (env %s_CERT, %s_KEY): %w", name, name, env, env, err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

// keyPair serves a client certificate from files and reloads it when either
// file changes, so a certificate rotated on disk (cert-manager, an agent)
// is used from the next handshake on without a restart.
type keyPair struct {
	certFile, keyFile string

	mu                sync.Mutex
	cert              *tls.Certificate
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func (k *keyPair) get() (*tls.Certificate, error) {
	cs, cerr := os.Stat(k.certFile)
	ks, kerr := os.Stat(k.keyFile)
	k.mu.Lock()
	defer k.mu.Unlock()
	if cerr == nil && kerr == nil && k.cert != nil &&
		cs.ModTime().Equal(k.certMod) && ks.ModTime().Equal(k.keyMod) && cs.Size() == k.certSize && ks.Size() == k.keySize {
		return k.cert, nil
	}
	c, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		if k.cert != nil {
			// Caught between the writes of a rotation: the last good pair
			// serves until both files are in place.
			return k.cert, nil
		}
		return nil, err
	}
	k.cert = &c
	if cerr == nil && kerr == nil {
		k.certMod, k.keyMod, k.certSize, k.keySize = cs.ModTime(), ks.ModTime(), cs.Size(), ks.Size()
	}
	return k.cert, nil
}
