package activities_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
)

type idempotencyStore struct {
	n   int64
	err error
}

func (s idempotencyStore) Sweep(context.Context, time.Time, int32) (int64, error) { return s.n, s.err }

var sweepCases = slices.Concat([]errorCase{{name: "network", portErr: errNetwork}},
	codes(retryable, apperr.NotFound, apperr.Invalid, apperr.Unavailable, apperr.Internal))

// A sweep is retried whatever failed, in whichever store: deleting rows
// older than a cutoff can always be done again.
func TestSweepIdempotencyKeysRetriesEveryError(t *testing.T) {
	for _, c := range sweepCases {
		for i := range 2 {
			t.Run(fmt.Sprintf("%s/store %d", c.name, i), func(t *testing.T) {
				stores := []activities.IdempotencySweeper{idempotencyStore{n: 4}, idempotencyStore{n: 4}}
				stores[i] = idempotencyStore{err: c.portErr}
				s := &activities.Sweeper{Stores: stores}
				requireClass(t, c, execute(t, s, s.SweepIdempotencyKeys, activities.SweepBatch{Cutoff: time.Now(), Limit: 10}))
			})
		}
	}
	s := &activities.Sweeper{Stores: []activities.IdempotencySweeper{idempotencyStore{n: 3}, idempotencyStore{n: 9}, idempotencyStore{n: 0}}}
	n, err := runResult[int64](t, s, s.SweepIdempotencyKeys, activities.SweepBatch{Cutoff: time.Now(), Limit: 10})
	require.NoError(t, err)
	require.EqualValues(t, 9, n, "the largest count of any store, so the workflow continues while one has a full batch")
}

type holdExpirer struct {
	n   int
	err error
}

func (e holdExpirer) ExpireHolds(context.Context, int) (int, error) { return e.n, e.err }

// The hold expiry sweep is retried whatever failed: voiding holds past
// their expiry is safe to repeat, and the next run does it anyway.
func TestExpireHoldsRetriesEveryError(t *testing.T) {
	for _, c := range sweepCases {
		t.Run(c.name, func(t *testing.T) {
			h := &activities.HoldSweeper{Expirer: holdExpirer{err: c.portErr}}
			requireClass(t, c, execute(t, h, h.ExpireHolds, 500))
		})
	}
	h := &activities.HoldSweeper{Expirer: holdExpirer{n: 42}}
	n, err := runResult[int](t, h, h.ExpireHolds, 500)
	require.NoError(t, err)
	require.Equal(t, 42, n)
}
