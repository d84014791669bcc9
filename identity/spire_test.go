package identity_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/identity"
)

// EnvSPIREBinDir points the SPIRE tests at spire-server and spire-agent
// (built by `make spire`); without it they look in ../bin and
// ../tools/spire/bin, and skip when the binaries are absent.
const EnvSPIREBinDir = "THEPROTOCOL_SPIRE_BIN_DIR"

// spireSVIDTTL is the workload SVID lifetime in the SPIRE tests: short, so
// the rotation test sees the agent rotate (at about half-life), long enough
// that a loaded machine keeps up.
const spireSVIDTTL = 20 * time.Second

func spireBins(t *testing.T) (server, agent string) {
	t.Helper()
	dirs := []string{os.Getenv(EnvSPIREBinDir), filepath.Join("..", "bin"), filepath.Join("..", "tools", "spire", "bin")}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		s, a := filepath.Join(d, "spire-server"), filepath.Join(d, "spire-agent")
		if isExec(s) && isExec(a) {
			s, _ = filepath.Abs(s)
			a, _ = filepath.Abs(a)
			return s, a
		}
	}
	t.Skipf("SPIRE binaries not found (looked in $%s, ../bin, ../tools/spire/bin): run `make spire` to build them", EnvSPIREBinDir)
	return "", ""
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// spire is one SPIRE server (and later its agent) for trust domain td, all
// state in a private temp dir, listening on 127.0.0.1 only.
type spire struct {
	t                   *testing.T
	td                  spiffeid.TrustDomain
	dir                 string
	serverBin, agentBin string
	serverSock          string
	agentSock           string
	bundlePort          int
	serverPort          int
}

func (s *spire) logs() string {
	var b strings.Builder
	for _, f := range []string{"server/server.log", "agent/agent.log"} {
		raw, _ := os.ReadFile(filepath.Join(s.dir, f))
		if len(raw) > 4000 {
			raw = raw[len(raw)-4000:]
		}
		fmt.Fprintf(&b, "--- %s (tail)\n%s\n", f, raw)
	}
	return b.String()
}

func startProcess(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	require.NoError(t, cmd.Start(), "start %s", name)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// cli runs spire-server with args against this server's socket.
func (s *spire) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append(args, "-socketPath", s.serverSock)
	cmd := exec.CommandContext(ctx, s.serverBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (s *spire) mustCLI(args ...string) string {
	s.t.Helper()
	out, err := s.cli(args...)
	require.NoError(s.t, err, "spire-server %v: %s\n%s", args, out, s.logs())
	return out
}

// startSPIREServer starts a SPIRE server for td with a bundle endpoint
// (https_spiffe) and waits until it is healthy.
func startSPIREServer(t *testing.T, td spiffeid.TrustDomain) *spire {
	serverBin, agentBin := spireBins(t)
	// Unix socket paths are limited to 108 bytes: keep the dir short.
	dir, err := os.MkdirTemp("", "spire")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	for _, d := range []string{"server/data", "agent/data", "agent/public", "agent/admin"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o700))
	}
	s := &spire{t: t, td: td, dir: dir, serverBin: serverBin, agentBin: agentBin,
		serverSock: filepath.Join(dir, "server/api.sock"), agentSock: filepath.Join(dir, "agent/public/api.sock"),
		bundlePort: freePort(t), serverPort: freePort(t)}
	conf := fmt.Sprintf(`server {
  bind_address = "127.0.0.1"
  bind_port = "%d"
  trust_domain = "%s"
  socket_path = "%s"
  data_dir = "%s/server/data"
  log_file = "%s/server/server.log"
  default_x509_svid_ttl = "1h"
  federation { bundle_endpoint { address = "127.0.0.1" port = %d } }
}
plugins {
  DataStore "sql" { plugin_data { database_type = "sqlite3" connection_string = "%s/server/data/datastore.sqlite3" } }
  KeyManager "memory" { plugin_data {} }
  NodeAttestor "join_token" { plugin_data {} }
}
`, s.serverPort, td.Name(), s.serverSock, dir, dir, s.bundlePort, dir)
	cfgPath := filepath.Join(dir, "server.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(conf), 0o600))
	startProcess(t, serverBin, "run", "-config", cfgPath)
	waitFor(t, 60*time.Second, "spire-server healthy\n"+s.logs(), func() bool {
		_, err := s.cli("healthcheck")
		return err == nil
	})
	return s
}

// federate creates a federation relationship from s to peer (https_spiffe,
// initial bundle handed over out of band).
func (s *spire) federate(peer *spire) {
	bundle := peer.mustCLI("bundle", "show", "-format", "spiffe")
	path := filepath.Join(s.dir, peer.td.Name()+".bundle.json")
	require.NoError(s.t, os.WriteFile(path, []byte(bundle), 0o600))
	s.mustCLI("federation", "create", "-trustDomain", peer.td.Name(),
		"-bundleEndpointURL", fmt.Sprintf("https://127.0.0.1:%d", peer.bundlePort),
		"-bundleEndpointProfile", "https_spiffe",
		"-endpointSpiffeID", spiffeid.RequireFromPath(peer.td, "/spire/server").String(),
		"-trustDomainBundlePath", path, "-trustDomainBundleFormat", "spiffe")
}

// entry registers path for this test process's uid under the agent.
func (s *spire) entry(path string, federatesWith ...spiffeid.TrustDomain) spiffeid.ID {
	id := spiffeid.RequireFromPath(s.td, path)
	args := []string{"entry", "create",
		"-parentID", spiffeid.RequireFromPath(s.td, "/agent").String(),
		"-spiffeID", id.String(),
		"-selector", "unix:uid:" + strconv.Itoa(os.Getuid()),
		"-x509SVIDTTL", strconv.Itoa(int(spireSVIDTTL.Seconds()))}
	for _, td := range federatesWith {
		args = append(args, "-federatesWith", td.IDString())
	}
	s.mustCLI(args...)
	return id
}

// startAgent attests an agent with a join token and starts it.
func (s *spire) startAgent() {
	bootstrap := filepath.Join(s.dir, "agent/bootstrap.pem")
	require.NoError(s.t, os.WriteFile(bootstrap, []byte(s.mustCLI("bundle", "show")), 0o600))
	out := s.mustCLI("token", "generate", "-spiffeID", spiffeid.RequireFromPath(s.td, "/agent").String(), "-ttl", "600")
	fields := strings.Fields(out)
	require.Len(s.t, fields, 2, "token output %q", out)
	conf := fmt.Sprintf(`agent {
  server_address = "127.0.0.1"
  server_port = "%d"
  trust_domain = "%s"
  data_dir = "%s/agent/data"
  log_file = "%s/agent/agent.log"
  socket_path = "%s"
  admin_socket_path = "%s/agent/admin/admin.sock"
  trust_bundle_path = "%s"
}
plugins {
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "memory" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
}
`, s.serverPort, s.td.Name(), s.dir, s.dir, s.agentSock, s.dir, bootstrap)
	cfgPath := filepath.Join(s.dir, "agent.conf")
	require.NoError(s.t, os.WriteFile(cfgPath, []byte(conf), 0o600))
	startProcess(s.t, s.agentBin, "run", "-config", cfgPath, "-joinToken", fields[1])
}

// node connects a component to the agent's Workload API as id, polling until
// the agent serves that SVID.
func (s *spire) node(id spiffeid.ID) *node {
	s.t.Helper()
	src, err := identity.NewSPIRESource(context.Background(), identity.SPIREOptions{
		Addr: "unix://" + s.agentSock, ID: id, StartTimeout: 90 * time.Second,
	})
	require.NoError(s.t, err, s.logs())
	s.t.Cleanup(func() { _ = src.Close() })
	// Sessions must not outlive an SVID: chains ≤ ~2 s, SVIDs rotate with ≥ ~5 s left.
	return newNode(s.t, src, id, identity.TLSOptions{SessionMaxAge: time.Second})
}

func TestSPIREScenarios(t *testing.T) {
	start := time.Now()
	s := startSPIREServer(t, alphaTD)
	serverID := s.entry("/registry/main")
	clientID := s.entry("/teg/main")
	strangerID := s.entry("/teg/other")
	s.startAgent()
	server, client, stranger := s.node(serverID), s.node(clientID), s.node(strangerID)
	t.Logf("SPIRE server+agent up, 3 SVIDs fetched in %s", time.Since(start).Round(100*time.Millisecond))
	// Kept until it has expired (after the rotation scenario): a genuinely
	// SPIRE-issued SVID past its NotAfter.
	firstClientSVID, err := client.src.GetX509SVID()
	require.NoError(t, err)

	// A dev-CA client in another trust domain that trusts alpha's SPIRE
	// bundle, while alpha has not federated with it.
	beta, err := identity.NewEphemeralCA(betaTD, identity.CAOptions{})
	require.NoError(t, err)
	foreign := devNode(t, beta, "/teg/main", identity.DevSourceOptions{})
	alphaBundle, err := server.src.GetX509BundleForTrustDomain(alphaTD)
	require.NoError(t, err)
	foreign.tls = identity.NewTLS(foreign.src, x509bundle.NewSet(beta.X509Bundle(), alphaBundle), identity.TLSOptions{Metrics: foreign.metrics})

	runAuthzScenarios(t, fabric{ // expired: see the subtest at the end
		server: server, client: client, stranger: stranger, foreign: foreign,
		ownBundle: server.src,
	})

	t.Run("rotation drops no requests", func(t *testing.T) {
		// The agent rotates 20 s SVIDs at about half-life.
		runRotationScenario(t, server, client, spireSVIDTTL+5*time.Second, 2)
	})

	t.Run("expired SVID", func(t *testing.T) {
		notAfter := firstClientSVID.Certificates[0].NotAfter
		waitFor(t, spireSVIDTTL+10*time.Second, "first client SVID to expire", func() bool { return time.Now().After(notAfter) })
		srv := serve(t, server, identity.AuthorizeID(client.id))
		c := identity.NewTLS(firstClientSVID, server.src, identity.TLSOptions{}).
			HTTPClient(identity.AuthorizeID(server.id), identity.HTTPClientOptions{Timeout: 5 * time.Second})
		_, err := call(c, srv.URL)
		require.Error(t, err)
		waitFor(t, 5*time.Second, "expired counted", func() bool {
			return server.failures("server", identity.ReasonExpired) == 1
		})
	})
}

func TestSPIREFederation(t *testing.T) {
	start := time.Now()
	a := startSPIREServer(t, alphaTD)
	b := startSPIREServer(t, betaTD)
	a.federate(b)
	b.federate(a)
	aID := a.entry("/registry/main", betaTD)
	bID := b.entry("/registry/main", alphaTD)
	a.startAgent()
	b.startAgent()
	an, bn := a.node(aID), b.node(bID)
	// The federated bundle reaches the workload once the servers have
	// fetched each other's bundle endpoint and the agents synced: poll.
	waitFor(t, 90*time.Second, "federated bundles delivered\n"+a.logs()+b.logs(), func() bool {
		_, e1 := an.src.GetX509BundleForTrustDomain(betaTD)
		_, e2 := bn.src.GetX509BundleForTrustDomain(alphaTD)
		return e1 == nil && e2 == nil
	})
	t.Logf("two federated SPIRE deployments ready in %s", time.Since(start).Round(100*time.Millisecond))

	srv := serve(t, an, identity.AuthorizeMemberOf(betaTD))
	got, err := call(bn.client(aID), srv.URL)
	require.NoError(t, err)
	require.Equal(t, bID.String(), got)

	// Removing the peer trust domain on alpha refuses beta's next call even
	// though SPIRE still delivers beta's bundle.
	an.bundles.RemovePeer(betaTD)
	_, err = call(bn.client(aID), srv.URL)
	require.Error(t, err)
}
