package db

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolOptions bounds a pool. Zero values take the defaults.
type PoolOptions struct {
	MaxConns        int32
	MinConns        int32
	ConnectTimeout  time.Duration
	ApplicationName string
}

// Open returns a pool on dsn and pings it once. The caller closes it.
func Open(ctx context.Context, dsn string, o PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if o.MinConns > 0 {
		cfg.MinConns = o.MinConns
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	if o.ApplicationName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = o.ApplicationName
	}
	// Fail fast instead of hanging forever when Postgres is unreachable;
	// health checks rely on it.
	cfg.HealthCheckPeriod = 5 * time.Second
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		registerUUID(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping %s: %w", redact(dsn), err)
	}
	return pool, nil
}

// WithDatabase returns dsn with its database name replaced by name.
func WithDatabase(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse postgres url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// EnsureDatabase creates database name on the cluster behind adminDSN when it
// does not exist yet. Safe to call concurrently: a racing creator's
// duplicate-database error is treated as success.
func EnsureDatabase(ctx context.Context, adminDSN, name string) error {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("connect %s: %w", redact(adminDSN), err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	// Two processes of one registry starting at once: the loser of the
	// race sees duplicate_database, or a unique violation on the catalog.
	if err != nil && SQLState(err) != "42P04" && SQLState(err) != "23505" {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// redact hides the password of a URL-form DSN for error messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		if i := strings.Index(dsn, "password="); i >= 0 {
			return dsn[:i] + "password=xxxxx"
		}
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
