package db_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestMigrationsApplyToEveryRole(t *testing.T) {
	t.Parallel()
	for _, role := range db.Roles {
		t.Run(string(role), func(t *testing.T) {
			t.Parallel()
			tdb := testenv.NewDB(t, role)
			names, err := db.MigrationNames(role)
			require.NoError(t, err)
			require.NotEmpty(t, names)
			// The template was migrated; migrating again is a no-op that
			// reports the newest version.
			v, err := db.Migrate(context.Background(), tdb.Pool, role, nil)
			require.NoError(t, err)
			require.Positive(t, v)
			var n int
			require.NoError(t, tdb.Pool.QueryRow(context.Background(),
				`SELECT count(*) FROM goose_db_version WHERE version_id > 0 AND is_applied`).Scan(&n))
			require.Equal(t, len(names), n)
		})
	}
}

func TestTxCommitsAndRollsBack(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleTEG)
	s := db.NewStore(tdb.Pool, tdb.Name)
	ctx := context.Background()
	w := db.NewOutboxWriter("alpha", "alpha-main", events.SourceTEG, nil)

	write := func(key string) func(pgx.Tx) error {
		return func(tx pgx.Tx) error {
			e, err := events.New("TokensTransferred", key, "acct", time.Now())
			if err != nil {
				return err
			}
			return w.Write(ctx, tx, e)
		}
	}
	require.NoError(t, s.Tx(ctx, write("k1")))

	boom := apperr.New(apperr.InsufficientFunds, "no money")
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		if err := write("k2")(tx); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom, "fn's error comes back unchanged")
	require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(err))

	var keys []string
	rows, err := tdb.Pool.Query(ctx, `SELECT idempotency_key FROM outbox ORDER BY id`)
	require.NoError(t, err)
	keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"k1"}, keys, "the failed transaction left nothing behind")

	// A duplicate business key is refused by the database.
	err = s.Tx(ctx, write("k1"))
	require.Error(t, err)
	require.Equal(t, db.SQLStateUnique, db.SQLState(err))
}

// Two transactions that lock the same rows in opposite orders deadlock; the
// Store must retry the victim so both eventually commit.
func TestTxRetriesDeadlocks(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleTEG)
	s := db.NewStore(tdb.Pool, tdb.Name)
	ctx := context.Background()
	_, err := tdb.Pool.Exec(ctx, `CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL);
		INSERT INTO counters VALUES (1, 0), (2, 0);`)
	require.NoError(t, err)

	var attempts atomic.Int32
	var ready sync.WaitGroup
	ready.Add(2)
	run := func(first, second int) error {
		once := sync.Once{}
		return s.Tx(ctx, func(tx pgx.Tx) error {
			attempts.Add(1)
			if _, err := tx.Exec(ctx, `UPDATE counters SET n = n + 1 WHERE id = $1`, first); err != nil {
				return err
			}
			once.Do(func() { ready.Done(); ready.Wait() }) // both hold their first lock
			_, err := tx.Exec(ctx, `UPDATE counters SET n = n + 1 WHERE id = $1`, second)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- run(1, 2) }()
	go func() { errs <- run(2, 1) }()
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	require.GreaterOrEqual(t, attempts.Load(), int32(3), "the deadlock victim was retried")
	var sum int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT sum(n) FROM counters`).Scan(&sum))
	require.Equal(t, 4, sum, "each transaction applied exactly once")
}

func TestTxGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleTEG)
	s := db.NewStore(tdb.Pool, tdb.Name)
	s.MaxAttempts = 3
	calls := 0
	err := s.Tx(context.Background(), func(tx pgx.Tx) error {
		calls++
		_, err := tx.Exec(context.Background(), `DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'forced'; END $$`)
		return err
	})
	require.Equal(t, 3, calls)
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err))
	require.Equal(t, "40001", db.SQLState(errors.Unwrap(err)))
}

func TestIdempotencyStore(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleRegistry)
	s := db.NewIdempotencyStore(tdb.Pool)
	ctx := context.Background()
	now := time.Now()

	claimed, _, err := s.Claim(ctx, "dev:1", "key-a", []byte("h1"), "POST", "/x", now)
	require.NoError(t, err)
	require.True(t, claimed)

	claimed, rec, err := s.Claim(ctx, "dev:1", "key-a", []byte("h1"), "POST", "/x", now)
	require.NoError(t, err)
	require.False(t, claimed)
	require.Zero(t, rec.StatusCode, "still in flight")

	// Another caller's identical key is independent.
	claimed, _, err = s.Claim(ctx, "dev:2", "key-a", []byte("h1"), "POST", "/x", now)
	require.NoError(t, err)
	require.True(t, claimed)

	require.NoError(t, s.Complete(ctx, "dev:1", "key-a", 201, []byte(`{"ok":true}`), now))
	_, rec, err = s.Claim(ctx, "dev:1", "key-a", []byte("h1"), "POST", "/x", now)
	require.NoError(t, err)
	require.Equal(t, 201, rec.StatusCode)
	require.JSONEq(t, `{"ok":true}`, string(rec.Body))

	require.NoError(t, s.Release(ctx, "dev:2", "key-a"))
	claimed, _, err = s.Claim(ctx, "dev:2", "key-a", []byte("h2"), "POST", "/x", now)
	require.NoError(t, err)
	require.True(t, claimed, "a released key can be claimed again")

	n, err := s.Sweep(ctx, now.Add(time.Second), 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "sweep is bounded per call")
	n, err = s.Sweep(ctx, now.Add(time.Second), 100)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}
