package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/theprotocol-dev/theprotocol/testenv/testpki"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// loadDeploy is load with SPIFFE_ENDPOINT_SOCKET blanked too (it has no
// THEPROTOCOL_ prefix).
func loadDeploy(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	t.Setenv(EnvSPIFFEEndpointSocket, "")
	return load(t, env, args...)
}

func TestDeployDefaults(t *testing.T) {
	c, err := loadDeploy(t, nil)
	require.NoError(t, err)
	require.Equal(t, DeploySettings{Identity: IdentitySettings{SPIREStartTimeout: 30 * time.Second}}, c.Deploy)
	require.Empty(t, c.Deploy.TrustedProxyList())
	conn, creds, err := c.Deploy.Temporal.Connection()
	require.NoError(t, err)
	require.Nil(t, conn.TLS, "plain gRPC unless asked")
	require.Nil(t, creds)
	opts, err := c.Deploy.Kafka.ClientOpts()
	require.NoError(t, err)
	require.Empty(t, opts)
}

func TestIdentitySourceResolution(t *testing.T) {
	cases := []struct {
		name       string
		env        map[string]string
		args       []string
		serve, dev string // resolved source; "" = refused
	}{
		{name: "nothing: serve refuses, dev uses its CA", serve: "", dev: IdentityDevCA},
		{name: "socket set selects SPIRE for serve", env: map[string]string{EnvSPIFFEEndpointSocket: "unix:///run/spire/agent.sock"}, serve: IdentitySPIRE, dev: IdentityDevCA},
		{name: "dev CA asked for", args: []string{"-identity", "devca"}, serve: IdentityDevCA, dev: IdentityDevCA},
		{name: "dev CA asked for by env", env: map[string]string{"THEPROTOCOL_IDENTITY": "devca", EnvSPIFFEEndpointSocket: "unix:///a.sock"}, serve: IdentityDevCA, dev: IdentityDevCA},
		{name: "SPIRE asked for", args: []string{"-identity", "spire", "-spiffe-endpoint-socket", "tcp://127.0.0.1:8081"}, serve: IdentitySPIRE, dev: IdentitySPIRE},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadDeploy(t, tc.env, tc.args...)
			require.NoError(t, err)
			got, err := c.Deploy.Identity.Resolve(false)
			if tc.serve == "" {
				require.ErrorIs(t, err, ErrNoIdentitySource)
				require.ErrorContains(t, err, "SPIFFE_ENDPOINT_SOCKET")
				require.ErrorContains(t, err, "-identity=devca")
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.serve, got)
			}
			got, err = c.Deploy.Identity.Resolve(true)
			require.NoError(t, err)
			require.Equal(t, tc.dev, got)
		})
	}
}

func TestDeploySettingsRefused(t *testing.T) {
	pki := newTestPKI(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a certificate\n"), 0o600))
	missing := filepath.Join(t.TempDir(), "missing.pem")
	cases := []struct {
		name string
		env  map[string]string
		args []string
		errs []string
	}{
		{name: "unknown identity", args: []string{"-identity", "vault"}, errs: []string{"identity (env THEPROTOCOL_IDENTITY) must be spire or devca", `"vault"`}},
		{name: "spire without socket", args: []string{"-identity", "spire"}, errs: []string{"needs the Workload API address", "SPIFFE_ENDPOINT_SOCKET"}},
		{name: "socket not an address", env: map[string]string{EnvSPIFFEEndpointSocket: "/run/agent.sock"}, errs: []string{"spiffe-endpoint-socket (env SPIFFE_ENDPOINT_SOCKET)", "unix:///path"}},
		{name: "tcp socket with a host name", args: []string{"-spiffe-endpoint-socket", "tcp://spire:8081"}, errs: []string{"tcp://ip:port"}},
		{name: "spire timeout zero", args: []string{"-spire-start-timeout", "0s"}, errs: []string{"THEPROTOCOL_SPIRE_START_TIMEOUT"}},

		{name: "temporal CA path missing", args: []string{"-temporal-tls-ca", missing}, errs: []string{"temporal-tls-ca (env THEPROTOCOL_TEMPORAL_TLS_CA)", "missing.pem", "no such file"}},
		{name: "temporal CA not PEM", env: map[string]string{"THEPROTOCOL_TEMPORAL_TLS_CA": garbage}, errs: []string{"THEPROTOCOL_TEMPORAL_TLS_CA", "holds no PEM certificate"}},
		{name: "temporal cert without key", args: []string{"-temporal-tls-cert", pki.ClientCert}, errs: []string{"temporal-tls-cert", "temporal-tls-key", "go together"}},
		{name: "temporal key of another cert", args: []string{"-temporal-tls-cert", pki.ClientCert, "-temporal-tls-key", pki.ServerKey}, errs: []string{"THEPROTOCOL_TEMPORAL_TLS_CERT", "private key does not match"}},
		{name: "temporal TLS switch not a bool", env: map[string]string{"THEPROTOCOL_TEMPORAL_TLS": "yes please"}, errs: []string{`THEPROTOCOL_TEMPORAL_TLS="yes please"`, "true or false"}},
		{name: "temporal API key twice", env: map[string]string{"THEPROTOCOL_TEMPORAL_API_KEY": "k"}, args: []string{"-temporal-api-key-file", pki.apiKey}, errs: []string{"temporal API key given twice"}},
		{name: "temporal API key file missing", args: []string{"-temporal-api-key-file", missing}, errs: []string{"temporal-api-key-file (env THEPROTOCOL_TEMPORAL_API_KEY_FILE)", "no such file"}},

		{name: "kafka CA path missing", args: []string{"-kafka-tls-ca", missing}, errs: []string{"kafka-tls-ca (env THEPROTOCOL_KAFKA_TLS_CA)", "no such file"}},
		{name: "kafka key without cert", env: map[string]string{"THEPROTOCOL_KAFKA_TLS_KEY": pki.ClientKey}, errs: []string{"kafka-tls-cert", "go together"}},
		{name: "kafka unknown mechanism", args: []string{"-kafka-sasl-mechanism", "GSSAPI", "-kafka-sasl-user", "u"}, errs: []string{"kafka-sasl-mechanism (env THEPROTOCOL_KAFKA_SASL_MECHANISM) must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", `"GSSAPI"`}},
		{name: "kafka PLAIN in clear", env: map[string]string{"THEPROTOCOL_KAFKA_SASL_PASSWORD": "p"}, args: []string{"-kafka-sasl-mechanism", "PLAIN", "-kafka-sasl-user", "u"}, errs: []string{"sends the password in clear"}},
		{name: "kafka SCRAM without user", env: map[string]string{"THEPROTOCOL_KAFKA_SASL_PASSWORD": "p"}, args: []string{"-kafka-sasl-mechanism", "SCRAM-SHA-256"}, errs: []string{"needs a user", "THEPROTOCOL_KAFKA_SASL_USER"}},
		{name: "kafka SCRAM without password", args: []string{"-kafka-sasl-mechanism", "scram-sha-512", "-kafka-sasl-user", "u"}, errs: []string{"needs a password"}},
		{name: "kafka user without mechanism", args: []string{"-kafka-sasl-user", "u"}, errs: []string{"set without kafka-sasl-mechanism", "THEPROTOCOL_KAFKA_SASL_USER"}},
		{name: "kafka password file missing", args: []string{"-kafka-sasl-mechanism", "SCRAM-SHA-256", "-kafka-sasl-user", "u", "-kafka-sasl-password-file", missing}, errs: []string{"kafka-sasl-password-file (env THEPROTOCOL_KAFKA_SASL_PASSWORD_FILE)"}},

		{name: "trusted proxy not an address", args: []string{"-trusted-proxies", "10.0.0.1, proxy.internal"}, errs: []string{"trusted-proxies (env THEPROTOCOL_TRUSTED_PROXIES)", `"proxy.internal"`}},
		{name: "trusted proxy bad range", env: map[string]string{"THEPROTOCOL_TRUSTED_PROXIES": "10.0.0.0/33"}, errs: []string{"THEPROTOCOL_TRUSTED_PROXIES", "CIDR"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadDeploy(t, tc.env, tc.args...)
			require.Error(t, err)
			for _, want := range tc.errs {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestTrustedProxyList(t *testing.T) {
	c, err := loadDeploy(t, map[string]string{"THEPROTOCOL_TRUSTED_PROXIES": " 10.0.0.0/8, 192.0.2.7 ,,::1"})
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.0/8", "192.0.2.7", "::1"}, c.Deploy.TrustedProxyList())
}

// The Temporal options reach a real TLS gRPC endpoint: the server is
// verified against the configured CA, the client presents its certificate,
// and the API key arrives as a bearer token.
func TestTemporalClientOverMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv := startGRPCRecorder(t, pki)
	c, err := loadDeploy(t, nil, "-temporal-tls-ca", pki.CA, "-temporal-tls-cert", pki.ClientCert, "-temporal-tls-key", pki.ClientKey,
		"-temporal-tls-server-name", testpki.ServerName, "-temporal-api-key-file", pki.apiKey)
	require.NoError(t, err)
	conn, creds, err := c.Deploy.Temporal.Connection()
	require.NoError(t, err)
	require.NotNil(t, conn.TLS)
	require.Equal(t, testpki.ServerName, conn.TLS.ServerName)
	require.NotNil(t, creds)

	dial := func(conn client.ConnectionOptions, creds client.Credentials) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl, err := client.DialContext(ctx, client.Options{HostPort: srv.addr, ConnectionOptions: conn, Credentials: creds, Logger: quietSDKLog{}})
		if err == nil {
			cl.Close()
		}
		return err
	}
	require.NoError(t, dial(conn, creds))
	client, auth := srv.last()
	require.Equal(t, testpki.ClientName, client, "the client certificate was presented")
	require.Equal(t, "Bearer s3cret-key", auth, "the key file's content, without its newline")

	// Without the CA the server is not trusted (its CA is no system root).
	c, err = loadDeploy(t, nil, "-temporal-tls-cert", pki.ClientCert, "-temporal-tls-key", pki.ClientKey, "-temporal-tls-server-name", testpki.ServerName)
	require.NoError(t, err)
	conn, creds, err = c.Deploy.Temporal.Connection()
	require.NoError(t, err)
	require.ErrorContains(t, dial(conn, creds), "certificate signed by unknown authority")
}

// The Kafka options reach a real broker that requires TLS with a client
// certificate and SCRAM: records go through with the right settings and
// not with a wrong password.
func TestKafkaClientOverTLSAndSCRAM(t *testing.T) {
	pki := newTestPKI(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(pki.ServerTLS(t)), kfake.EnableSASL(),
		kfake.Superuser(SASLScramSHA512, "relay", "hunter2"), kfake.SeedTopics(1, "t.events"))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("hunter2\n"), 0o600))
	args := []string{"-kafka-tls-ca", pki.CA, "-kafka-tls-cert", pki.ClientCert, "-kafka-tls-key", pki.ClientKey,
		"-kafka-sasl-mechanism", "SCRAM-SHA-512", "-kafka-sasl-user", "relay"}

	produce := func(opts []kgo.Opt) (*kgo.Client, error) {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordDeliveryTimeout(5 * time.Second)}, opts...)...)
		require.NoError(t, err)
		t.Cleanup(cl.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl, cl.ProduceSync(ctx, &kgo.Record{Topic: "t.events", Value: []byte("v")}).FirstErr()
	}

	c, err := loadDeploy(t, nil, append(args, "-kafka-sasl-password-file", pwFile)...)
	require.NoError(t, err)
	opts, err := c.Deploy.Kafka.ClientOpts()
	require.NoError(t, err)
	cl, err := produce(opts)
	require.NoError(t, err)
	tlsCfg, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config)
	require.NotNil(t, tlsCfg)
	require.NotNil(t, tlsCfg.RootCAs)
	mechs, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism)
	require.Len(t, mechs, 1)
	require.Equal(t, SASLScramSHA512, mechs[0].Name())

	c, err = loadDeploy(t, map[string]string{"THEPROTOCOL_KAFKA_SASL_PASSWORD": "hunter3"}, args...)
	require.NoError(t, err)
	opts, err = c.Deploy.Kafka.ClientOpts()
	require.NoError(t, err)
	_, err = produce(opts)
	require.Error(t, err, "a wrong password is refused")
}

// A client certificate rotated on disk is presented from the next
// handshake on; a half-written rotation keeps the previous pair.
func TestClientCertificateReloads(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	copyFile(t, pki.ClientCert, cert)
	copyFile(t, pki.ClientKey, key)
	cfg, err := TLSFiles{CertFile: cert, KeyFile: key}.load("x", "X")
	require.NoError(t, err)
	cn := func() string {
		c, err := cfg.GetClientCertificate(nil)
		require.NoError(t, err)
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		require.NoError(t, err)
		return leaf.Subject.CommonName
	}
	require.Equal(t, testpki.ClientName, cn())
	copyFile(t, pki.ServerCert, cert) // the key does not match yet
	require.Equal(t, testpki.ClientName, cn())
	copyFile(t, pki.ServerKey, key)
	require.Equal(t, testpki.ServerName, cn())
}

// --- helpers -------------------------------------------------------------------

// newTestPKI is testpki.New plus an API key file.
func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{PKI: testpki.New(t), apiKey: filepath.Join(t.TempDir(), "api-key")}
	require.NoError(t, os.WriteFile(p.apiKey, []byte("s3cret-key\n"), 0o600))
	return p
}

type testPKI struct {
	*testpki.PKI
	apiKey string
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, raw, 0o600))
	// Modification times can be equal within the file system's
	// resolution; move it forward so the change is seen.
	future := time.Now().Add(time.Duration(len(raw)) * time.Millisecond)
	require.NoError(t, os.Chtimes(to, future, future))
}

// grpcRecorder is a TLS gRPC server that answers every call "unknown
// method" (as a frontend without that API would) and records the caller's
// certificate and authorization header.
type grpcRecorder struct {
	addr       string
	mu         sync.Mutex
	clientCN   string
	authHeader string
}

func startGRPCRecorder(t *testing.T, pki *testPKI) *grpcRecorder {
	t.Helper()
	r := &grpcRecorder{}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(pki.ServerTLS(t))),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			ctx := stream.Context()
			r.mu.Lock()
			if p, ok := peer.FromContext(ctx); ok {
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
					r.clientCN = ti.State.PeerCertificates[0].Subject.CommonName
				}
			}
			if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("authorization")) > 0 {
				r.authHeader = md.Get("authorization")[0]
			}
			r.mu.Unlock()
			method, _ := grpc.MethodFromServerStream(stream)
			return status.Errorf(codes.Unimplemented, "unknown method %s", method)
		}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return r
}

func (r *grpcRecorder) last() (clientCN, auth string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clientCN, r.authHeader
}

type quietSDKLog struct{}

func (quietSDKLog) Debug(string, ...any) {}
func (quietSDKLog) Info(string, ...any)  {}
func (quietSDKLog) Warn(string, ...any)  {}
func (quietSDKLog) Error(string, ...any) {}
