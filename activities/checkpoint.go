package activities

import (
	"context"
	"time"
)

// CheckpointLedger is the part of the TEG ledger that writes balance
// checkpoints (the node adapts ledgerstore.Store to it).
type CheckpointLedger interface {
	// WriteBalanceCheckpoint writes a BalanceCheckpoint event and returns
	// the outbox sequence number it covers.
	WriteBalanceCheckpoint(ctx context.Context) (coversSeq int64, err error)
	// LastBalanceCheckpointAt is when the newest checkpoint was taken
	// (zero: none yet).
	LastBalanceCheckpointAt(ctx context.Context) (time.Time, error)
}

// checkpointSlack lets a scheduled checkpoint go ahead a little before
// Every has fully passed: schedule ticks and the checkpoints' own
// timestamps do not line up to the second.
const checkpointSlack = 10 * time.Second

// BalanceCheckpoints writes the TEG's scheduled balance checkpoints.
type BalanceCheckpoints struct {
	Ledger CheckpointLedger
	// Every spaces them (the schedule ticks every minute); 0 writes one at
	// every tick.
	Every time.Duration
	Now   func() time.Time
}

// CheckpointResult says what one run did.
type CheckpointResult struct {
	Written   bool
	CoversSeq int64
}

// WriteBalanceCheckpoint writes a checkpoint unless the newest one is
// younger than Every. Every error is retryable: a checkpoint can always
// be written again (a repeat only writes one more), and the relay being
// busy or behind (Unavailable) passes.
func (b *BalanceCheckpoints) WriteBalanceCheckpoint(ctx context.Context) (CheckpointResult, error) {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	if b.Every > checkpointSlack {
		last, err := b.Ledger.LastBalanceCheckpointAt(ctx)
		if err != nil {
			return CheckpointResult{}, err
		}
		if !last.IsZero() && now().Sub(last) < b.Every-checkpointSlack {
			return CheckpointResult{}, nil
		}
	}
	covers, err := b.Ledger.WriteBalanceCheckpoint(ctx)
	if err != nil {
		return CheckpointResult{}, err
	}
	return CheckpointResult{Written: true, CoversSeq: covers}, nil
}
