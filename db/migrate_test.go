package db_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// A database migrated by an older release (without the newest common
// migration) must accept the new common migration even though it is
// numbered below role migrations already applied.
func TestMigrateAppliesNewCommonMigrationsOutOfOrder(t *testing.T) {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, testenv.PostgresURL(t))
	require.NoError(t, err)
	defer admin.Close(ctx)
	name := fmt.Sprintf("migrate_outoforder_%x", rand.Uint64())
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })

	cfg, err := pgx.ParseConfig(testenv.PostgresURL(t))
	require.NoError(t, err)
	cfg.Database = name
	sqlDB := stdlib.OpenDB(*cfg)
	defer sqlDB.Close()

	full, err := db.MigrationFS(db.RoleTEG)
	require.NoError(t, err)
	all := full.(fstest.MapFS)
	var newestCommon string
	for n := range all {
		if strings.HasPrefix(n, "0000") && n > newestCommon {
			newestCommon = n
		}
	}
	require.NotEmpty(t, newestCommon)
	older := fstest.MapFS{}
	for n, f := range all {
		if n != newestCommon {
			older[n] = f
		}
	}
	_, err = db.MigrateFS(ctx, sqlDB, older, db.RoleTEG, nil)
	require.NoError(t, err)
	var applied bool
	require.NoError(t, sqlDB.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM goose_db_version WHERE version_id = $1)`,
		versionOf(t, newestCommon)).Scan(&applied))
	require.False(t, applied)

	_, err = db.MigrateFS(ctx, sqlDB, full, db.RoleTEG, nil)
	require.NoError(t, err, "the new common migration is applied below the role's versions")
	require.NoError(t, sqlDB.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM goose_db_version WHERE version_id = $1 AND is_applied)`,
		versionOf(t, newestCommon)).Scan(&applied))
	require.True(t, applied)
}

func versionOf(t *testing.T, file string) int64 {
	var v int64
	for _, c := range file {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
	}
	require.Positive(t, v)
	return v
}
