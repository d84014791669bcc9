package activities

import (
	"context"
	"fmt"
	"time"
)

// IdempotencySweeper is the part of db.IdempotencyStore the sweep needs.
type IdempotencySweeper interface {
	Sweep(ctx context.Context, cutoff time.Time, maxRows int32) (int64, error)
}

// Sweeper deletes expired records from a registry's databases.
type Sweeper struct {
	Stores []IdempotencySweeper
}

// SweepBatch is one bounded deletion.
type SweepBatch struct {
	Cutoff time.Time
	Limit  int32
}

// SweepIdempotencyKeys deletes up to Limit expired records from each store
// and returns the largest count deleted from any one store (so the workflow
// keeps going while any store still has a full batch).
func (s *Sweeper) SweepIdempotencyKeys(ctx context.Context, in SweepBatch) (int64, error) {
	var most int64
	for i, st := range s.Stores {
		n, err := st.Sweep(ctx, in.Cutoff, in.Limit)
		if err != nil {
			return 0, fmt.Errorf("sweep store %d: %w", i, err)
		}
		most = max(most, n)
	}
	return most, nil
}
