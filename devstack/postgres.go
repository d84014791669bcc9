package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresSuperuser is the superuser name of embedded clusters.
const PostgresSuperuser = "theprotocol"

// pgRunUser is the unprivileged account that owns and runs embedded
// clusters when we are root (initdb and postgres refuse to run as root).
const pgRunUser = "theprotocol-pg"

// PostgresOptions configures an embedded cluster.
type PostgresOptions struct {
	Dir  string // data directory; created and initialised if empty
	Host string // listen address, default 127.0.0.1
	// Port 0 picks a free port (and picks again should it be taken before
	// the server binds it).
	Port int
	// Install lets FindPostgresBin install the distribution's postgresql
	// package when no server binaries are found and we are root.
	Install bool
	// Settings are extra postgresql.conf settings (-c name=value).
	Settings map[string]string
	Log      *slog.Logger
}

// Postgres is a running embedded cluster.
type Postgres struct {
	opts  PostgresOptions
	bin   string
	cred  *syscall.Credential
	proc  *child
	logF  *os.File
	Owner string // OS user running the server
}

// ErrNoPostgres is returned when no server binaries exist and installing
// them is not possible; its message holds the exact command to run.
var ErrNoPostgres = errors.New("PostgreSQL server binaries not found")

// FindPostgresBin locates initdb/postgres: `pg_config --bindir`, then the
// newest /usr/lib/postgresql/*/bin. When none is found and install is set and
// we are root, it installs Debian's postgresql package first.
func FindPostgresBin(install bool, log *slog.Logger) (string, error) {
	if dir := findPostgresBin(); dir != "" {
		return dir, nil
	}
	cmd := "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql"
	if !install {
		return "", fmt.Errorf("%w: install them with: sudo sh -c '%s'", ErrNoPostgres, cmd)
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%w and we are not root: install them with: sudo sh -c '%s'", ErrNoPostgres, cmd)
	}
	if log != nil {
		log.Info("installing PostgreSQL server binaries", "command", cmd)
	}
	c := exec.Command("sh", "-c", cmd)
	c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: %s failed: %v\n%s", ErrNoPostgres, cmd, err, tail(out, 2000))
	}
	if dir := findPostgresBin(); dir != "" {
		return dir, nil
	}
	return "", fmt.Errorf("%w even after installing postgresql", ErrNoPostgres)
}

func findPostgresBin() string {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if isFile(filepath.Join(dir, "initdb")) && isFile(filepath.Join(dir, "postgres")) {
			return dir
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	for _, dir := range matches {
		if isFile(filepath.Join(dir, "initdb")) && isFile(filepath.Join(dir, "postgres")) {
			return dir
		}
	}
	return ""
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// StartPostgres initialises opts.Dir when needed and starts the server,
// returning once it accepts connections.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	bin, err := FindPostgresBin(opts.Install, opts.Log)
	if err != nil {
		return nil, err
	}
	p := &Postgres{opts: opts, bin: bin}
	if err := p.prepareOwner(); err != nil {
		return nil, err
	}
	if err := p.initdb(ctx); err != nil {
		return nil, err
	}
	choose := opts.Port == 0
	err = retryOnTakenPort(opts.Log, "postgres", choose, func(int) error {
		if choose {
			port, err := pickPort(p.opts.Host)
			if err != nil {
				return fmt.Errorf("postgres port: %w", err)
			}
			p.opts.Port = port
		}
		return p.start(ctx)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// prepareOwner picks the OS account that runs the server: ourselves, or when
// we are root a dedicated system user (created on first use; `nobody` as a
// fallback) that owns the data directory.
func (p *Postgres) prepareOwner() error {
	if err := os.MkdirAll(p.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", p.opts.Dir, err)
	}
	if os.Geteuid() != 0 {
		u, _ := user.Current()
		if u != nil {
			p.Owner = u.Username
		}
		return nil
	}
	u, err := user.Lookup(pgRunUser)
	if err != nil {
		out, addErr := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", pgRunUser).CombinedOutput()
		if addErr == nil || strings.Contains(string(out), "already exists") {
			u, err = user.Lookup(pgRunUser)
		}
		if err != nil {
			u, err = user.Lookup("nobody")
			if err != nil {
				return fmt.Errorf("no unprivileged user to run PostgreSQL as (useradd %s failed: %s)", pgRunUser, strings.TrimSpace(string(out)))
			}
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	p.Owner = u.Username
	// The server must be able to reach its data directory: make the parents
	// traversable (not readable) and hand the directory itself over.
	abs, _ := filepath.Abs(p.opts.Dir)
	for dir := filepath.Dir(abs); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil {
			break
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, st.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("make %s traversable for %s: %w", dir, p.Owner, err)
			}
		}
	}
	return filepath.Walk(abs, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

func (p *Postgres) initdb(ctx context.Context) error {
	if isFile(filepath.Join(p.opts.Dir, "PG_VERSION")) {
		return nil
	}
	p.opts.Log.Info("initialising PostgreSQL cluster", "dir", p.opts.Dir, "owner", p.Owner)
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, "initdb"),
		"-D", p.opts.Dir, "-U", PostgresSuperuser, "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb %s: %v\n%s", p.opts.Dir, err, tail(out, 2000))
	}
	return nil
}

func (p *Postgres) start(ctx context.Context) error {
	settings := map[string]string{
		"listen_addresses":        p.opts.Host,
		"port":                    strconv.Itoa(p.opts.Port),
		"unix_socket_directories": "",
		"fsync":                   "on",
		"synchronous_commit":      "on",
		"full_page_writes":        "on",
		"max_connections":         "400",
		"shared_buffers":          "256MB",
		"logging_collector":       "off",
	}
	for k, v := range p.opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"-D", p.opts.Dir}
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	logPath := filepath.Join(filepath.Dir(filepath.Clean(p.opts.Dir)), filepath.Base(p.opts.Dir)+".log")
	logF, err := openLog(logPath)
	if err != nil {
		return err
	}
	p.logF = logF
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), args...)
	cmd.Dir = "/"
	// SIGINT on our death is a fast shutdown: nothing committed is lost.
	proc, err := startChild("postgres", cmd, logF, p.cred, syscall.SIGINT)
	if err != nil {
		logF.Close()
		return err
	}
	p.proc = proc
	deadline := time.Now().Add(60 * time.Second)
	for {
		if done, err := proc.exited(); done {
			if bindFailed(proc.startupOutput()) {
				err = fmt.Errorf("%w (port %d)", errPortInUse, p.opts.Port)
			}
			logF.Close()
			return fmt.Errorf("postgres exited during start-up (%w); see %s", err, logPath)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, p.AdminURL())
		if err == nil {
			// Another cluster on a port we chose would accept the
			// connection too (same superuser, trust): it must be ours.
			var dir string
			err = conn.QueryRow(cctx, `SELECT current_setting('data_directory')`).Scan(&dir)
			conn.Close(ctx)
			if err == nil && !p.isOwnDir(dir) {
				err = fmt.Errorf("%w: port %d answers for the cluster in %s", errPortInUse, p.opts.Port, dir)
				_ = proc.stop(syscall.SIGQUIT, 5*time.Second)
				logF.Close()
				cancel()
				return err
			}
		}
		cancel()
		if err == nil {
			p.opts.Log.Info("PostgreSQL ready", "addr", p.Addr(), "dir", p.opts.Dir, "pid", proc.pid())
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = proc.stop(syscall.SIGQUIT, 5*time.Second)
			logF.Close()
			return fmt.Errorf("postgres not accepting connections after 60s: %v; see %s", err, logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// isOwnDir reports whether a server's data_directory is this cluster's.
func (p *Postgres) isOwnDir(dir string) bool {
	own, err := filepath.Abs(p.opts.Dir)
	if err != nil {
		return false
	}
	if r, err := filepath.EvalSymlinks(own); err == nil {
		own = r
	}
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	return filepath.Clean(dir) == filepath.Clean(own)
}

// Addr is host:port.
func (p *Postgres) Addr() string { return fmt.Sprintf("%s:%d", p.opts.Host, p.opts.Port) }

// AdminURL is a superuser URL on the postgres database.
func (p *Postgres) AdminURL() string {
	u := url.URL{Scheme: "postgres", User: url.User(PostgresSuperuser), Host: p.Addr(), Path: "/postgres", RawQuery: "sslmode=disable"}
	return u.String()
}

// PID is the postmaster's process ID.
func (p *Postgres) PID() int { return p.proc.pid() }

// Stop shuts the server down (fast shutdown: in-flight transactions roll
// back, everything committed is durable) and waits for it.
func (p *Postgres) Stop() error {
	if p == nil || p.proc == nil {
		return nil
	}
	err := p.proc.stop(syscall.SIGINT, 30*time.Second)
	if p.logF != nil {
		p.logF.Close()
	}
	return err
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
