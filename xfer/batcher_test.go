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
// backlog, and gives up with the caller's context. No step depends on how
// long anything takes: a waiting caller is observed through the wait
// channel it installs on the pair's queue, not inferred from silence.
func TestAdmitBoundsThePairBacklog(t *testing.T) {
	b := &Batcher{Opts: BatcherOptions{MaxBatch: 2, MaxBacklog: 3}}
	b.init()
	ctx := context.Background()
	require.NoError(t, b.Admit(ctx, "beta"), "no queue yet")

	b.mu.Lock()
	b.pairs["beta"] = &pairQueue{pending: make([]activities.XferItem, 3)}
	b.mu.Unlock()
	// An ended context: Admit returns at once with its error when (and
	// only when) it would have to wait.
	ended, cancel := context.WithCancel(ctx)
	cancel()
	require.True(t, errors.Is(b.Admit(ended, "beta"), context.Canceled), "a full backlog makes the caller wait")
	require.NoError(t, b.Admit(ended, "gamma"), "another pair is not affected")

	b.mu.Lock()
	q := b.pairs["beta"]
	q.wake() // forget the wait channel of the call above
	b.mu.Unlock()
	admitted := make(chan error, 1)
	go func() { admitted <- b.Admit(ctx, "beta") }()
	waitingInAdmit(t, b, q, admitted, "admitted while full")

	b.mu.Lock()
	q.pending = q.pending[:1] // a batch of two went to a workflow…
	q.settling = 2
	q.wake()
	b.mu.Unlock()
	// Woken, the caller checked again and went back to waiting.
	waitingInAdmit(t, b, q, admitted, "admitted while the backlog (waiting + settling) is full")

	b.mu.Lock()
	q.settling = 0 // …and settled
	q.wake()
	b.mu.Unlock()
	select {
	case err := <-admitted:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("not admitted after the backlog shrank")
	}
}

// waitingInAdmit returns once the one caller blocked in Admit has
// installed a wait channel on q (the test cleared it before), i.e. it
// checked the backlog and decided to wait; it fails if the caller was
// admitted instead.
func waitingInAdmit(t *testing.T, b *Batcher, q *pairQueue, admitted <-chan error, msg string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.mu.Lock()
		waiting := q.room != nil
		b.mu.Unlock()
		if waiting {
			return
		}
		select {
		case err := <-admitted:
			t.Fatalf("%s: %v", msg, err)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the caller neither waited nor was admitted")
		}
	}
}
