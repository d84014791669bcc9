package xfer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
)

// Admit lets transfers in while the pair's backlog has room, makes them
// wait while it is full, lets them in as soon as a batch leaves the
// backlog, and gives up with the caller's context.
func TestAdmitBoundsThePairBacklog(t *testing.T) {
	b := &Batcher{Opts: BatcherOptions{MaxBatch: 2, MaxBacklog: 3}}
	b.init()
	ctx := context.Background()
	require.NoError(t, b.Admit(ctx, "beta"), "no queue yet")

	b.mu.Lock()
	b.pairs["beta"] = &pairQueue{pending: make([]activities.XferItem, 3)}
	b.mu.Unlock()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.True(t, errors.Is(b.Admit(short, "beta"), context.DeadlineExceeded), "a full backlog makes the caller wait")
	require.NoError(t, b.Admit(ctx, "gamma"), "another pair is not affected")

	admitted := make(chan error, 1)
	go func() { admitted <- b.Admit(ctx, "beta") }()
	select {
	case err := <-admitted:
		t.Fatalf("admitted while full: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	b.mu.Lock()
	q := b.pairs["beta"]
	q.pending = q.pending[:1] // a batch of two went to a workflow…
	q.settling = 2
	q.wake()
	b.mu.Unlock()
	select {
	case err := <-admitted:
		t.Fatalf("admitted while the backlog (waiting + settling) is full: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	b.mu.Lock()
	q.settling = 0 // …and settled
	q.wake()
	b.mu.Unlock()
	select {
	case err := <-admitted:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("not admitted after the backlog shrank")
	}
}
