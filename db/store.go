package db

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// Postgres SQLSTATE codes the Store and the role stores care about.
const (
	sqlstateSerialization = "40001"
	sqlstateDeadlock      = "40P01"
	SQLStateUnique        = "23505"
	SQLStateCheck         = "23514"
	SQLStateForeignKey    = "23503"
)

// DefaultMaxAttempts bounds how often a transaction is retried after a
// serialization failure or deadlock.
const DefaultMaxAttempts = 5

var txRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "db_tx_retries_total",
	Help: "Transactions retried after a serialization failure or deadlock, by database and SQLSTATE.",
}, []string{"database", "sqlstate"})

var txFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "db_tx_retry_exhausted_total",
	Help: "Transactions that still failed with a retryable error after the last attempt.",
}, []string{"database"})

// Collectors returns the package's Prometheus collectors for registration.
func Collectors() []prometheus.Collector { return []prometheus.Collector{txRetries, txFailures} }

// Store owns a pool and every transaction run on it. Role stores (ledger,
// registry, eventstore) embed it and add typed methods; helpers below them
// take a pgx.Tx, never the pool, so a unit of work is always one transaction.
type Store struct {
	Pool        *pgxpool.Pool
	Name        string // database name, for metrics and logs
	MaxAttempts int
}

// NewStore wraps pool. name labels metrics.
func NewStore(pool *pgxpool.Pool, name string) *Store {
	return &Store{Pool: pool, Name: name, MaxAttempts: DefaultMaxAttempts}
}

// Tx runs fn in a read-committed transaction. See TxOpts.
func (s *Store) Tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.TxOpts(ctx, pgx.TxOptions{}, fn)
}

// TxOpts runs fn in one transaction with opts: it begins, calls fn, commits
// when fn returns nil and rolls back otherwise. When Postgres aborts the
// transaction with a serialization failure (40001) or deadlock (40P01) — in
// fn or at commit — the whole transaction, fn included, is retried up to
// MaxAttempts times with jittered backoff, so fn must not have side effects
// outside the transaction. Other errors are returned unchanged (wrapped only
// with context), so apperr codes from fn survive.
func (s *Store) TxOpts(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	attempts := s.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	var err error
	for attempt := 1; attempt <= attempts; attempt++ {
		err = s.once(ctx, opts, fn)
		state := retryableState(err)
		if state == "" {
			return err
		}
		txRetries.WithLabelValues(s.Name, state).Inc()
		if attempt == attempts {
			break
		}
		// 1, 2, 4, 8 ms … plus jitter so colliding transactions spread out.
		backoff := time.Duration(1<<(attempt-1))*time.Millisecond + time.Duration(rand.Int64N(int64(time.Millisecond)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
	txFailures.WithLabelValues(s.Name).Inc()
	return apperr.Wrap(err, apperr.Unavailable, "database contention: transaction aborted %d times, retry later", attempts)
}

func (s *Store) once(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) (err error) {
	tx, err := s.Pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			// Rollback on a context that is not the caller's: a cancelled
			// request must still release the connection cleanly.
			rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = tx.Rollback(rbCtx)
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func retryableState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case sqlstateSerialization, sqlstateDeadlock:
			return pgErr.Code
		}
	}
	return ""
}

// SQLState returns the SQLSTATE of err, or "".
func SQLState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// ConstraintName returns the violated constraint's name, or "".
func ConstraintName(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}

// IsNotFound reports whether err is pgx's no-rows error.
func IsNotFound(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// NotFound maps pgx.ErrNoRows to an apperr.NotFound with msg and leaves other
// errors unchanged; role stores call it at the edge so no caller sees pgx
// errors.
func NotFound(err error, format string, args ...any) error {
	if IsNotFound(err) {
		return apperr.New(apperr.NotFound, format, args...)
	}
	return err
}
