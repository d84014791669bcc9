package db

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Role names a kind of database. They match config.Role* values.
type Role string

const (
	RoleRegistry   Role = "registry"
	RoleTEG        Role = "teg"
	RoleEventStore Role = "eventstore"
)

// Roles lists every role with migrations.
var Roles = []Role{RoleRegistry, RoleTEG, RoleEventStore}

//go:embed migrations
var migrationsFS embed.FS

// MigrationFS returns the ordered migration set of role: the common files
// followed by the role's own. The names keep their version prefixes, so the
// merged set is a single goose sequence.
func MigrationFS(role Role) (fs.FS, error) {
	merged := fstest.MapFS{}
	for _, dir := range []string{"migrations/common", "migrations/" + string(role)} {
		entries, err := fs.ReadDir(migrationsFS, dir)
		if err != nil {
			return nil, fmt.Errorf("migrations for %s: %w", role, err)
		}
		for _, e := range entries {
			if e.IsDir() || path.Ext(e.Name()) != ".sql" {
				continue
			}
			if _, dup := merged[e.Name()]; dup {
				return nil, fmt.Errorf("migration %s exists in common and %s", e.Name(), role)
			}
			body, err := fs.ReadFile(migrationsFS, path.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			merged[e.Name()] = &fstest.MapFile{Data: body, Mode: 0o444}
		}
	}
	return merged, nil
}

// MigrationNames lists role's migration files in order (for tests and the
// migrate command's output).
func MigrationNames(role Role) ([]string, error) {
	fsys, err := MigrationFS(role)
	if err != nil {
		return nil, err
	}
	var names []string
	for name := range fsys.(fstest.MapFS) {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// Migrate applies role's pending migrations to the database behind pool. A
// Postgres advisory lock serialises concurrent migrators (several processes
// starting at once is normal in dev and tests). It returns the version the
// database is at afterwards.
func Migrate(ctx context.Context, pool *pgxpool.Pool, role Role, log *slog.Logger) (int64, error) {
	fsys, err := MigrationFS(role)
	if err != nil {
		return 0, err
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	return migrateSQL(ctx, sqlDB, fsys, role, log)
}

func migrateSQL(ctx context.Context, sqlDB *sql.DB, fsys fs.FS, role Role, log *slog.Logger) (int64, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return 0, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		// The common set (0000x) and each role's set (001xx) share one
		// version sequence, so a new common migration is always numbered
		// below role migrations a database already has. Apply such gaps
		// instead of refusing to start.
		goose.WithAllowOutofOrder(true),
	)
	if err != nil {
		return 0, fmt.Errorf("migrations for %s: %w", role, err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate %s: %w", role, err)
	}
	for _, r := range results {
		if log != nil {
			log.Info("migration applied", "role", role, "version", r.Source.Version, "file", path.Base(r.Source.Path), "duration", r.Duration)
		}
	}
	return p.GetDBVersion(ctx)
}
