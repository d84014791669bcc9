package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
)

type checkpointLedger struct {
	last              time.Time
	lastErr, writeErr error
	written           int
}

func (l *checkpointLedger) WriteBalanceCheckpoint(context.Context) (int64, error) {
	if l.writeErr != nil {
		return 0, l.writeErr
	}
	l.written++
	return 41, nil
}

func (l *checkpointLedger) LastBalanceCheckpointAt(context.Context) (time.Time, error) {
	return l.last, l.lastErr
}

// A checkpoint is retried whatever failed: writing one more is harmless.
func TestWriteBalanceCheckpointRetriesEveryError(t *testing.T) {
	for _, c := range sweepCases {
		t.Run(c.name, func(t *testing.T) {
			b := &activities.BalanceCheckpoints{Ledger: &checkpointLedger{writeErr: c.portErr}}
			requireClass(t, c, execute(t, b, b.WriteBalanceCheckpoint))
			b = &activities.BalanceCheckpoints{Ledger: &checkpointLedger{lastErr: c.portErr}, Every: 5 * time.Minute}
			requireClass(t, c, execute(t, b, b.WriteBalanceCheckpoint))
		})
	}
}

// Checkpoints are spaced by Every (less a little slack for the schedule's
// ticks); the first one is always written.
func TestWriteBalanceCheckpointSpacing(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		every time.Duration
		last  time.Time
		write bool
	}{
		{"first", 5 * time.Minute, time.Time{}, true},
		{"too soon", 5 * time.Minute, now.Add(-4 * time.Minute), false},
		{"due, within the slack", 5 * time.Minute, now.Add(-4*time.Minute - 55*time.Second), true},
		{"every tick", time.Minute, now.Add(-55 * time.Second), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := &checkpointLedger{last: c.last}
			b := &activities.BalanceCheckpoints{Ledger: l, Every: c.every, Now: func() time.Time { return now }}
			res, err := runResult[activities.CheckpointResult](t, b, b.WriteBalanceCheckpoint)
			require.NoError(t, err)
			require.Equal(t, c.write, res.Written)
			if c.write {
				require.Equal(t, 1, l.written)
				require.EqualValues(t, 41, res.CoversSeq)
			} else {
				require.Zero(t, l.written)
			}
		})
	}
}
