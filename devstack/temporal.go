package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	Bin  string // the temporal CLI
	Host string // default 127.0.0.1
	// Port is the frontend's gRPC port; 0 picks a free one (and picks again
	// should it be taken before the server binds it).
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
// A port it chose that is taken before the server binds it is chosen again
// (see retryOnTakenPort); a port set in opts that is taken is an error.
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
	if err := portFree(opts.Host, opts.UIPort); err != nil {
		return nil, fmt.Errorf("temporal UI port: %w", err)
	}
	if opts.DBFile != "" {
		if err := os.MkdirAll(filepath.Dir(opts.DBFile), 0o755); err != nil {
			return nil, err
		}
	}
	logF, err := openLog(opts.LogFile)
	if err != nil {
		return nil, err
	}
	choosePort, chooseHTTP := opts.Port == 0, opts.HTTPPort == 0
	var t *Temporal
	err = retryOnTakenPort(opts.Log, "temporal", choosePort || chooseHTTP, func(int) error {
		o := opts
		var err error
		if choosePort {
			if o.Port, err = freePortExcept(o.Host, o.UIPort); err != nil {
				return fmt.Errorf("temporal port: %w", err)
			}
		}
		if chooseHTTP {
			if o.HTTPPort, err = freePortExcept(o.Host, o.Port, o.UIPort); err != nil {
				return fmt.Errorf("temporal HTTP port: %w", err)
			}
		}
		t, err = startTemporalOnce(ctx, bin, o, logF)
		return err
	})
	if err != nil {
		logF.Close()
		return nil, err
	}
	opts.Log.Info("Temporal dev server ready", "addr", t.Addr(), "ui", t.UIURL(), "pid", t.proc.pid())
	return t, nil
}

// startTemporalOnce starts the server on the ports of opts and waits until
// it is ready; it is stopped again when it is not.
func startTemporalOnce(ctx context.Context, bin string, opts TemporalOptions, logF *os.File) (*Temporal, error) {
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
		args = append(args, "--ui-port", strconv.Itoa(opts.UIPort))
	} else {
		args = append(args, "--headless")
	}
	if opts.DBFile != "" {
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
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+os.TempDir()) // keep the CLI's config lookups out of the user's home
	proc, err := startChild("temporal", cmd, logF, nil, syscall.SIGTERM)
	if err != nil {
		return nil, err
	}
	t := &Temporal{opts: opts, proc: proc, logF: logF}
	if err := t.waitReady(ctx, 90*time.Second); err != nil {
		_ = t.proc.stop(syscall.SIGTERM, 20*time.Second)
		return nil, err
	}
	return t, nil
}

func (t *Temporal) waitReady(ctx context.Context, budget time.Duration) error {
	deadline := time.Now().Add(budget)
	for {
		if done, err := t.proc.exited(); done {
			if bindFailed(t.proc.startupOutput()) {
				err = fmt.Errorf("%w (ports %d, HTTP %d, UI %d)", errPortInUse, t.opts.Port, t.opts.HTTPPort, t.opts.UIPort)
			}
			return fmt.Errorf("temporal dev server exited during start-up: %w (log: %s)", err, t.opts.LogFile)
		}
		err := PingTemporal(ctx, t.Addr(), t.opts.Namespaces)
		if err == nil {
			// Another server on a port we chose would answer too; ours
			// must still be running.
			if done, _ := t.proc.exited(); !done {
				return nil
			}
			continue
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

// quietLogger drops the SDK's client logs during health polling.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
