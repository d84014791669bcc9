package db_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// Pools from db.Open send uuid.UUID values (alone, in slices, behind
// pointers, nil pointers) as the same UUIDs Postgres reads back.
func TestPoolEncodesGoogleUUIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := testenv.NewDB(t, db.RoleTEG)
	pool, err := db.Open(ctx, tdb.DSN, db.PoolOptions{MaxConns: 2})
	require.NoError(t, err)
	defer pool.Close()
	one := uuid.New()
	many := []uuid.UUID{uuid.New(), uuid.Nil, uuid.Max, uuid.New()}
	var nilPtr *uuid.UUID
	var gotText string
	var gotOne, gotPtr uuid.UUID
	var gotMany []uuid.UUID
	var isNull bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid::text, $1::uuid, $2::uuid[], $3::uuid, $4::uuid IS NULL`, one, many, &one, nilPtr).
		Scan(&gotText, &gotOne, &gotMany, &gotPtr, &isNull))
	require.Equal(t, one.String(), gotText)
	require.Equal(t, one, gotOne)
	require.Equal(t, many, gotMany)
	require.Equal(t, one, gotPtr)
	require.True(t, isNull)
}

func benchmarkUUIDArrayEncode(b *testing.B, m *pgtype.Map) {
	ids := make([]uuid.UUID, 500)
	for i := range ids {
		ids[i] = uuid.New()
	}
	for b.Loop() {
		if _, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, ids, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUUIDEncode compares encoding 500 uuid.UUIDs as a uuid[]
// parameter with pgx's defaults and with the pools' registration.
func BenchmarkUUIDEncode(b *testing.B) {
	b.Run("pgx_default", func(b *testing.B) { benchmarkUUIDArrayEncode(b, pgtype.NewMap()) })
	b.Run("registered", func(b *testing.B) {
		m := pgtype.NewMap()
		db.RegisterUUID(m)
		benchmarkUUIDArrayEncode(b, m)
	})
}
