// Package spire runs real SPIRE servers and agents for tests: one server
// per trust domain with its state in a private temporary directory, bound
// to 127.0.0.1, an agent attested with a join token, and registration
// entries for the test's own uid (so the test process and the processes it
// starts get the SVIDs).
//
// The binaries come from $THEPROTOCOL_SPIRE_BIN_DIR, else <module>/bin or
// <module>/tools/spire/bin (`make spire` builds them); a test that needs
// them is skipped when they are absent and the variable is unset, and
// fails when the variable is set but names no binaries.
package spire

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

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/testenv"
)

// EnvBinDir names the directory holding spire-server and spire-agent.
const EnvBinDir = "THEPROTOCOL_SPIRE_BIN_DIR"

// SVIDTTL is the lifetime of the workload SVIDs Entry registers: short, so
// tests see the agent rotate (at about half-life), long enough that a
// loaded machine keeps up.
const SVIDTTL = 20 * time.Second

// Bins returns the paths of spire-server and spire-agent. It skips t only
// when $THEPROTOCOL_SPIRE_BIN_DIR is unset and the module has none; when the
// variable is set (as `make test` sets it) the caller asked for the real
// SPIRE suite, so missing binaries fail t instead of hiding the suite.
func Bins(t testing.TB) (server, agent string) {
	t.Helper()
	root, _ := testenv.ModuleRoot()
	server, agent, err := locate(os.Getenv(EnvBinDir), root)
	switch {
	case err == nil:
		return server, agent
	case os.Getenv(EnvBinDir) != "":
		t.Fatalf("SPIRE binaries required: %v", err)
	default:
		t.Skipf("%v: run `make spire` to build them", err)
	}
	return "", ""
}

// locate finds the binaries. With envDir set only that directory counts: a
// stray copy under the module must not stand in for the one the caller named.
func locate(envDir, root string) (server, agent string, err error) {
	var dirs []string
	if envDir != "" {
		dirs = []string{envDir}
	} else if root != "" {
		dirs = []string{filepath.Join(root, "bin"), filepath.Join(root, "tools", "spire", "bin")}
	}
	for _, d := range dirs {
		s, a := filepath.Join(d, "spire-server"), filepath.Join(d, "spire-agent")
		if isExec(s) && isExec(a) {
			s, _ = filepath.Abs(s)
			a, _ = filepath.Abs(a)
			return s, a, nil
		}
	}
	if envDir != "" {
		return "", "", fmt.Errorf("no executable spire-server and spire-agent in $%s=%s", EnvBinDir, envDir)
	}
	return "", "", fmt.Errorf("SPIRE binaries not found ($%s unset; looked in <module>/bin, <module>/tools/spire/bin)", EnvBinDir)
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Server is one SPIRE server (and, after StartAgent, its agent) for one
// trust domain.
type Server struct {
	t                   testing.TB
	TD                  spiffeid.TrustDomain
	dir                 string
	serverBin, agentBin string
	serverSock          string
	agentSock           string
	BundlePort          int // the server's federation bundle endpoint (https_spiffe)
	serverPort          int
}

// Logs is the tail of the server's and the agent's logs, for failure
// messages.
func (s *Server) Logs() string {
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

// WorkloadAPIAddr is the agent's Workload API address, in the form
// SPIFFE_ENDPOINT_SOCKET takes.
func (s *Server) WorkloadAPIAddr() string { return "unix://" + s.agentSock }

func startProcess(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	require.NoError(t, cmd.Start(), "start %s", name)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// CLI runs spire-server with args against this server's socket.
func (s *Server) CLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append(args, "-socketPath", s.serverSock)
	cmd := exec.CommandContext(ctx, s.serverBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (s *Server) mustCLI(args ...string) string {
	s.t.Helper()
	out, err := s.CLI(args...)
	require.NoError(s.t, err, "spire-server %v: %s\n%s", args, out, s.Logs())
	return out
}

// StartServer starts a SPIRE server for td with a bundle endpoint
// (https_spiffe) and waits until it is healthy; t's cleanup stops it.
func StartServer(t testing.TB, td spiffeid.TrustDomain) *Server {
	t.Helper()
	serverBin, agentBin := Bins(t)
	// Unix socket paths are limited to 108 bytes: keep the dir short.
	dir, err := os.MkdirTemp("", "spire")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	for _, d := range []string{"server/data", "agent/data", "agent/public", "agent/admin"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o700))
	}
	s := &Server{t: t, TD: td, dir: dir, serverBin: serverBin, agentBin: agentBin,
		serverSock: filepath.Join(dir, "server/api.sock"), agentSock: filepath.Join(dir, "agent/public/api.sock"),
		BundlePort: FreePort(t), serverPort: FreePort(t)}
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
`, s.serverPort, td.Name(), s.serverSock, dir, dir, s.BundlePort, dir)
	cfgPath := filepath.Join(dir, "server.conf")
	require.NoError(t, os.WriteFile(cfgPath, []byte(conf), 0o600))
	startProcess(t, serverBin, "run", "-config", cfgPath)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := s.CLI("healthcheck"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spire-server not healthy after 60s\n%s", s.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// Federate creates a federation relationship from s to peer (https_spiffe,
// initial bundle handed over out of band).
func (s *Server) Federate(peer *Server) {
	bundle := peer.mustCLI("bundle", "show", "-format", "spiffe")
	path := filepath.Join(s.dir, peer.TD.Name()+".bundle.json")
	require.NoError(s.t, os.WriteFile(path, []byte(bundle), 0o600))
	s.mustCLI("federation", "create", "-trustDomain", peer.TD.Name(),
		"-bundleEndpointURL", fmt.Sprintf("https://127.0.0.1:%d", peer.BundlePort),
		"-bundleEndpointProfile", "https_spiffe",
		"-endpointSpiffeID", spiffeid.RequireFromPath(peer.TD, "/spire/server").String(),
		"-trustDomainBundlePath", path, "-trustDomainBundleFormat", "spiffe")
}

// Entry registers path for this test process's uid under the agent, with
// SVIDTTL-long SVIDs.
func (s *Server) Entry(path string, federatesWith ...spiffeid.TrustDomain) spiffeid.ID {
	id := spiffeid.RequireFromPath(s.TD, path)
	args := []string{"entry", "create",
		"-parentID", spiffeid.RequireFromPath(s.TD, "/agent").String(),
		"-spiffeID", id.String(),
		"-selector", "unix:uid:" + strconv.Itoa(os.Getuid()),
		"-x509SVIDTTL", strconv.Itoa(int(SVIDTTL.Seconds()))}
	for _, td := range federatesWith {
		args = append(args, "-federatesWith", td.IDString())
	}
	s.mustCLI(args...)
	return id
}

// StartAgent attests an agent with a join token and starts it.
func (s *Server) StartAgent() {
	bootstrap := filepath.Join(s.dir, "agent/bootstrap.pem")
	require.NoError(s.t, os.WriteFile(bootstrap, []byte(s.mustCLI("bundle", "show")), 0o600))
	out := s.mustCLI("token", "generate", "-spiffeID", spiffeid.RequireFromPath(s.TD, "/agent").String(), "-ttl", "600")
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
`, s.serverPort, s.TD.Name(), s.dir, s.dir, s.agentSock, s.dir, bootstrap)
	cfgPath := filepath.Join(s.dir, "agent.conf")
	require.NoError(s.t, os.WriteFile(cfgPath, []byte(conf), 0o600))
	startProcess(s.t, s.agentBin, "run", "-config", cfgPath, "-joinToken", fields[1])
}
