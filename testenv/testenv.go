// Package testenv gives tests real infrastructure: a fresh, isolated
// PostgreSQL database per test (cloned from a migrated template), a Temporal
// client on the dev server with a unique task queue, and Kafka brokers.
//
// `make test` starts the shared services once (`theprotocol testenv -- go
// test ./...`) and exports their addresses:
//
//	THEPROTOCOL_TEST_POSTGRES_URL  superuser URL of a cluster tests may create databases on
//	THEPROTOCOL_TEST_TEMPORAL_ADDR host:port of a Temporal frontend
//	THEPROTOCOL_TEST_KAFKA_BROKERS comma-separated brokers
//
// When they are absent (plain `go test ./...`), the first test that needs a
// service starts a private one for the test binary; TestMain must then call
// testenv.Main so it is stopped and cleaned up afterwards.
//
// Under `go test -short` (make test-unit) every helper here that hands out a
// service skips the calling test instead, so the unit tests run with no
// service and no tool built.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/devstack"
)

// Environment variables that point tests at shared services.
const (
	EnvPostgresURL  = "THEPROTOCOL_TEST_POSTGRES_URL"
	EnvTemporalAddr = "THEPROTOCOL_TEST_TEMPORAL_ADDR"
	EnvKafkaBrokers = "THEPROTOCOL_TEST_KAFKA_BROKERS"
)

var (
	mu       sync.Mutex
	cleanups []func()
)

// Main runs the package's tests and then stops whatever services this test
// binary started itself. Use it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	mu.Unlock()
	os.Exit(code)
}

func onExit(f func()) {
	mu.Lock()
	cleanups = append(cleanups, f)
	mu.Unlock()
}

// SkipWithoutServices skips t under -short: it needs Postgres, Temporal or
// Kafka. The helpers that hand out services call it; a test that starts a
// service of its own (devstack) calls it first.
func SkipWithoutServices(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Postgres, Temporal or Kafka: skipped under -short (make test-unit)")
	}
}

// ModuleRoot finds the directory holding go.mod, walking up from the working
// directory (tests run in their package directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// --- PostgreSQL ---------------------------------------------------------

var (
	pgOnce sync.Once
	pgURL  string
	pgErr  error
)

// PostgresURL returns the superuser URL of the shared test cluster, starting
// a private one when EnvPostgresURL is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	SkipWithoutServices(t)
	pgOnce.Do(func() {
		if u := os.Getenv(EnvPostgresURL); u != "" {
			pgURL = u
			return
		}
		pgURL, pgErr = startPrivatePostgres()
	})
	if pgErr != nil {
		t.Fatalf("testenv: postgres: %v", pgErr)
	}
	return pgURL
}

// StartPostgres starts a fresh embedded cluster in its own directory and
// registers its teardown; used by `theprotocol testenv` and tests that need
// a cluster of their own (e.g. to stop it).
func StartPostgres(ctx context.Context, log *slog.Logger) (*devstack.Postgres, func(), error) {
	dir, err := os.MkdirTemp("", "theprotocol-test-pg-")
	if err != nil {
		return nil, nil, err
	}
	pg, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{
		Dir: filepath.Join(dir, "data"), Install: true, Log: log, // port chosen by devstack
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return pg, func() { _ = pg.Stop(); os.RemoveAll(dir) }, nil
}

func startPrivatePostgres() (string, error) {
	pg, stop, err := StartPostgres(context.Background(), nil)
	if err != nil {
		return "", err
	}
	onExit(stop)
	return pg.AdminURL(), nil
}

var templateMu sync.Mutex

// templateName is derived from the migrations' content, so a changed
// migration gets a fresh template and concurrent test binaries built from the
// same tree share one.
func templateName(role db.Role) (string, error) {
	fsys, err := db.MigrationFS(role)
	if err != nil {
		return "", err
	}
	names, err := db.MigrationNames(role)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return "", err
		}
		h.Write([]byte(n))
		h.Write(b)
	}
	return fmt.Sprintf("tmpl_%s_%s", role, hex.EncodeToString(h.Sum(nil))[:12]), nil
}

func ensureTemplate(ctx context.Context, adminURL string, role db.Role) (string, error) {
	name, err := templateName(role)
	if err != nil {
		return "", err
	}
	templateMu.Lock()
	defer templateMu.Unlock()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	// Serialise template creation across test binaries running in parallel.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, name); err != nil {
		return "", err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext($1))`, name) //nolint:errcheck
	var ready bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, name).Scan(&ready); err != nil {
		return "", err
	}
	if ready {
		return name, nil
	}
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+ident+` WITH (FORCE)`); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+ident); err != nil {
		return "", err
	}
	dsn, err := db.WithDatabase(adminURL, name)
	if err != nil {
		return "", err
	}
	pool, err := db.Open(ctx, dsn, db.PoolOptions{MaxConns: 2})
	if err != nil {
		return "", err
	}
	_, err = db.Migrate(ctx, pool, role, nil)
	pool.Close()
	if err != nil {
		return "", err
	}
	// Marked only after migrating, so a crash mid-way leaves no half-built
	// template that others would clone.
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+ident+` WITH is_template true ALLOW_CONNECTIONS false`); err != nil {
		return "", err
	}
	return name, nil
}

// DB is a fresh database for one test.
type DB struct {
	Name string
	DSN  string
	Pool *pgxpool.Pool
}

// NewDB returns a fresh database of role, migrated, with a pool; both are
// dropped when the test ends.
func NewDB(t testing.TB, role db.Role) DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := PostgresURL(t)
	tmpl, err := ensureTemplate(ctx, admin, role)
	if err != nil {
		t.Fatalf("testenv: template for %s: %v", role, err)
	}
	name := fmt.Sprintf("t_%s_%s", role, randomHex(6))
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE `+pgx.Identifier{tmpl}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	dsn, err := db.WithDatabase(admin, name)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := db.Open(ctx, dsn, db.PoolOptions{MaxConns: 16, ApplicationName: sanitizeAppName(t.Name())})
	if err != nil {
		t.Fatalf("testenv: open %s: %v", name, err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("testenv: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Logf("testenv: drop %s: %v", name, err)
		}
	})
	return DB{Name: name, DSN: dsn, Pool: pool}
}

func sanitizeAppName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 32 || r > 126 {
			return '_'
		}
		return r
	}, s)
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SortedKeys is a small helper for deterministic test output.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
