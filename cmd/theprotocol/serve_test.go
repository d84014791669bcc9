package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/testenv/logbuf"
	"github.com/theprotocol-dev/theprotocol/testenv/spire"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// `serve` without an identity source stops before touching any service,
// saying how to provide one; asking for the dev CA passes that check.
func TestServeRefusesWithoutIdentitySource(t *testing.T) {
	t.Setenv(config.EnvSPIFFEEndpointSocket, "")
	t.Setenv("THEPROTOCOL_IDENTITY", "")
	// Addresses nothing listens on: the refusal must come first.
	args := []string{"-data-dir", t.TempDir(), "-postgres-url", "postgres://nobody@127.0.0.1:1/none",
		"-temporal-addr", "127.0.0.1:1", "-kafka-brokers", "127.0.0.1:1"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	err := runServe(ctx, args)
	require.ErrorIs(t, err, config.ErrNoIdentitySource)
	require.ErrorContains(t, err, "SPIFFE_ENDPOINT_SOCKET")
	require.ErrorContains(t, err, "-identity=devca")

	err = runServe(ctx, append(args, "-identity", "devca"))
	require.Error(t, err, "nothing listens on the service addresses")
	require.NotErrorIs(t, err, config.ErrNoIdentitySource)

	err = runServe(ctx, append(args, "-identity", "spire"))
	require.ErrorContains(t, err, "needs the Workload API address")
}

// A TLS file that cannot be used fails the start, naming the setting,
// before any connection is tried.
func TestServeRefusesUnusableTLSFiles(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing-ca.pem")
	args := []string{"-data-dir", t.TempDir(), "-identity", "devca", "-postgres-url", "postgres://nobody@127.0.0.1:1/none",
		"-temporal-addr", "127.0.0.1:1", "-kafka-brokers", "127.0.0.1:1"}
	for _, flag := range []string{"-kafka-tls-ca", "-temporal-tls-ca"} {
		err := runServe(context.Background(), append(args, flag, missing))
		require.ErrorContains(t, err, strings.TrimPrefix(flag, "-")+" (env THEPROTOCOL_")
		require.ErrorContains(t, err, "missing-ca.pem: no such file or directory")
	}
}

// `serve` against a real SPIRE server and agent: with only
// SPIFFE_ENDPOINT_SOCKET set, the node's mTLS listener presents the SVID
// SPIRE issued for its TEG ID, and a workload holding a SPIRE SVID of the
// same trust domain is served (GET /internal/v1/whoami names both).
func TestServeTakesSVIDsFromSPIRE(t *testing.T) {
	testenv.SkipWithoutServices(t)
	spire.Bins(t) // skips without them, before anything starts
	t.Parallel()
	td := spiffeid.RequireTrustDomainFromString("serve.theprotocol.test")
	sp := spire.StartServer(t, td)
	reg := fmt.Sprintf("sv%d", time.Now().UnixNano()%1_000_000_000)
	nodeID := sp.Entry("/teg/" + reg)
	clientID := sp.Entry("/teg/whoami-client")
	sp.StartAgent()

	mtlsPort := spire.FreePort(t)
	r := config.Registry{ID: reg, Mainframe: true, Roles: []string{config.RoleRegistry, config.RoleTEG, config.RoleEventStore},
		APIPort: spire.FreePort(t), MTLSPort: mtlsPort, BundlePort: spire.FreePort(t), Namespace: testenv.TestNamespace}
	f := config.Frame{ID: "f" + reg, TrustDomain: td.Name(), Currency: "AVT", Genesis: true, Registries: []config.Registry{r}}
	dataDir := t.TempDir()
	topoPath := filepath.Join(dataDir, "topology.json")
	raw, err := json.Marshal(config.Topology{Frames: []config.Frame{f}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(topoPath, raw, 0o600))
	pgURL := testenv.PostgresURL(t)
	t.Cleanup(func() {
		dropDatabases(t, pgURL, r.DBName(config.RoleRegistry), r.DBName(config.RoleTEG), f.EventStoreDBName())
	})

	cmd := exec.Command(binary(t), "serve", "-topology", topoPath, "-data-dir", dataDir,
		"-postgres-url", pgURL, "-temporal-addr", testenv.TemporalAddr(t), "-kafka-brokers", strings.Join(testenv.KafkaBrokers(t), ","))
	cmd.Env = append(withoutEnv(os.Environ(), config.EnvSPIFFEEndpointSocket, "THEPROTOCOL_IDENTITY"),
		config.EnvSPIFFEEndpointSocket+"="+sp.WorkloadAPIAddr())
	logs := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	// The test's own SPIRE SVID, as a client of the node.
	src, err := identity.NewSPIRESource(context.Background(), identity.SPIREOptions{Addr: sp.WorkloadAPIAddr(), ID: clientID, StartTimeout: 90 * time.Second})
	require.NoError(t, err, sp.Logs())
	t.Cleanup(func() { _ = src.Close() })
	hc := identity.NewTLS(src, src, identity.TLSOptions{}).HTTPClient(identity.AuthorizeID(nodeID), identity.HTTPClientOptions{Timeout: 5 * time.Second})
	url := fmt.Sprintf("https://127.0.0.1:%d/internal/v1/whoami", mtlsPort)

	var res *http.Response
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("serve exited: %v\n%s\n%s", err, logs.String(), sp.Logs())
		default:
		}
		if res, err = hc.Get(url); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer on %s: %v\n%s\n%s", url, err, logs.String(), sp.Logs())
		}
		time.Sleep(250 * time.Millisecond)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	require.JSONEq(t, fmt.Sprintf(`{"node":%q,"caller":%q}`, nodeID, clientID), string(body))
	// Verified against SPIRE's bundle, for the node's TEG ID (the client's
	// authorizer checked both); and the lifetime is the one of the SPIRE
	// entry, not the dev CA's hour.
	leaf := res.TLS.PeerCertificates[0]
	require.Equal(t, nodeID.String(), leaf.URIs[0].String())
	require.InDelta(t, spire.SVIDTTL.Seconds(), leaf.NotAfter.Sub(leaf.NotBefore).Seconds(), 15)
	require.Contains(t, logs.String(), "identity from the SPIRE Workload API")
	_, err = os.Stat(filepath.Join(dataDir, "ca"))
	require.True(t, errors.Is(err, os.ErrNotExist), "no dev CA was created")
}

// withoutEnv drops the named variables from env.
func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// dropDatabases removes the databases `serve` created on the shared
// cluster.
func dropDatabases(t *testing.T, adminURL string, names ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Logf("drop test databases: %v", err)
		return
	}
	defer conn.Close(ctx)
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", n, err)
		}
	}
}
