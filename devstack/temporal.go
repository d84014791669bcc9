package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/workflows"
)

// cliAttributeTypes are the temporal CLI's names of search attribute types.
var cliAttributeTypes = map[enumspb.IndexedValueType]string{
	enumspb.INDEXED_VALUE_TYPE_TEXT:         "Text",
	enumspb.INDEXED_VALUE_TYPE_KEYWORD:      "Keyword",
	enumspb.INDEXED_VALUE_TYPE_INT:          "Int",
	enumspb.INDEXED_VALUE_TYPE_DOUBLE:       "Double",
	enumspb.INDEXED_VALUE_TYPE_BOOL:         "Bool",
	enumspb.INDEXED_VALUE_TYPE_DATETIME:     "Datetime",
	enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
}

// TemporalOptions configures the embedded dev server.
type TemporalOptions struct {
	Bin    string // the temporal CLI
	Host   string // default 127.0.0.1
	Port   int
	UIPort int // 0 runs it headless
	// HTTPPort is the frontend's HTTP API; 0 picks a free port other than
	// Port and UIPort. (Left to itself the dev server picks one before it
	// binds Port, and could pick Port: the start then failed, "address
	// already in use", when Port had itself just been chosen free.)
	HTTPPort int
	// DBFile persists state across restarts; empty keeps it in memory
	// (tests).
	DBFile     string
	Namespaces []string
	LogFile    string
	Log        *slog.Logger
}

// Temporal is a running dev server.
type Temporal struct {
	opts TemporalOptions
	proc *child
	logF *os.File
}

// StartTemporal starts `temporal server start-dev` tuned as measured on this kind of machine (transfer processor poll rate and eager activity
// execution cut a lone workflow's latency from ~450 ms to ~30 ms; WAL
// SQLite triples file-store throughput), with the namespaces and search
// attributes created, and returns once its frontend answers health checks.
func StartTemporal(ctx context.Context, opts TemporalOptions) (*Temporal, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	bin, err := exec.LookPath(opts.Bin)
	if err != nil {
		return nil, fmt.Errorf("temporal CLI not found at %q (run `make tools` to build it into bin/): %w", opts.Bin, err)
	}
	if err := portFree(opts.Host, opts.Port); err != nil {
		return nil, fmt.Errorf("temporal port: %w", err)
	}
	if opts.HTTPPort == 0 {
		if opts.HTTPPort, err = freePortExcept(opts.Host, opts.Port, opts.UIPort); err != nil {
			return nil, fmt.Errorf("temporal HTTP port: %w", err)
		}
	}
	args := []string{"server", "start-dev",
		"--ip", opts.Host,
		"--port", strconv.Itoa(opts.Port),
		"--http-port", strconv.Itoa(opts.HTTPPort),
		"--log-level", "warn",
		"--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
		"--dynamic-config-value", "system.enableActivityEagerExecution=true",
		"--dynamic-config-value", "limit.maxIDLength=1000",
	}
	if opts.UIPort > 0 {
		if err := portFree(opts.Host, opts.UIPort); err != nil {
			return nil, fmt.Errorf("temporal UI port: %w", err)
		}
		args = append(args, "--ui-port", strconv.Itoa(opts.UIPort))
	} else {
		args = append(args, "--headless")
	}
	if opts.DBFile != "" {
		if err := os.MkdirAll(filepath.Dir(opts.DBFile), 0o755); err != nil {
			return nil, err
		}
		args = append(args, "--db-filename", opts.DBFile,
			"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
	}
	for _, ns := range opts.Namespaces {
		args = append(args, "--namespace", ns)
	}
	// The custom search attributes the workflow families declare.
	for _, k := range workflows.SearchAttributeKeys() {
		typ, ok := cliAttributeTypes[k.GetValueType()]
		if !ok {
			return nil, fmt.Errorf("search attribute %s: no dev server type for %s", k.GetName(), k.GetValueType())
		}
		args = append(args, "--search-attribute", k.GetName()+"="+typ)
	}
	var logF *os.File
	if opts.LogFile != "" {
		if logF, err = openLog(opts.LogFile); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+os.TempDir()) // keep the CLI's config lookups out of the user's home
	proc, err := startChild("temporal", cmd, logWriter(logF), nil, syscall.SIGTERM)
	if err != nil {
		return nil, err
	}
	t := &Temporal{opts: opts, proc: proc, logF: logF}
	if err := t.waitReady(ctx, 90*time.Second); err != nil {
		_ = t.Stop()
		return nil, err
	}
	opts.Log.Info("Temporal dev server ready", "addr", t.Addr(), "ui", t.UIURL(), "pid", proc.pid())
	return t, nil
}

func (t *Temporal) waitReady(ctx context.Context, budget time.Duration) error {
	deadline := time.Now().Add(budget)
	for {
		if done, err := t.proc.exited(); done {
			return fmt.Errorf("temporal dev server exited during start-up: %v (log: %s)", err, t.opts.LogFile)
		}
		err := PingTemporal(ctx, t.Addr(), t.opts.Namespaces)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("temporal dev server not ready after %s: %v", budget, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// PingTemporal checks the frontend answers health checks and that each
// namespace exists.
func PingTemporal(ctx context.Context, addr string, namespaces []string) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.DialContext(cctx, client.Options{HostPort: addr, Logger: quietLogger{}})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(cctx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	nsc, err := client.NewNamespaceClient(client.Options{HostPort: addr, Logger: quietLogger{}})
	if err != nil {
		return err
	}
	defer nsc.Close()
	for _, ns := range namespaces {
		if _, err := nsc.Describe(cctx, ns); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	return nil
}

// Addr is the frontend host:port.
func (t *Temporal) Addr() string { return net.JoinHostPort(t.opts.Host, strconv.Itoa(t.opts.Port)) }

// UIURL is the Web UI base URL, or "" when headless.
func (t *Temporal) UIURL() string {
	if t.opts.UIPort == 0 {
		return ""
	}
	return "http://" + net.JoinHostPort(t.opts.Host, strconv.Itoa(t.opts.UIPort))
}

// PID is the server's process ID.
func (t *Temporal) PID() int { return t.proc.pid() }

// Stop stops the server and waits for it.
func (t *Temporal) Stop() error {
	if t == nil || t.proc == nil {
		return nil
	}
	err := t.proc.stop(syscall.SIGTERM, 20*time.Second)
	if t.logF != nil {
		t.logF.Close()
	}
	return err
}

// portFree fails when something already listens on host:port, so a stale
// server from another run is reported instead of silently reused.
func portFree(host string, port int) error {
	if port == 0 {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("%s:%d is in use (another dev stack running?): %w", host, port, err)
	}
	return ln.Close()
}

// FreePort returns a currently free TCP port on host.
func FreePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freePortExcept is FreePort, never one of taken.
func freePortExcept(host string, taken ...int) (int, error) {
	for range 100 {
		p, err := FreePort(host)
		if err != nil {
			return 0, err
		}
		if !slices.Contains(taken, p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port on %s besides %v", host, taken)
}

// quietLogger drops the SDK's client logs during health polling.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
