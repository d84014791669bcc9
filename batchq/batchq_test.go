package batchq

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gate is a run function that reports each batch it is given and, while
// held, blocks until released.
type gate struct {
	batches chan []int
	release chan struct{}
}

func newGate() *gate { return &gate{batches: make(chan []int, 100), release: make(chan struct{})} }

func (g *gate) run(_ context.Context, reqs []int) []int {
	g.batches <- append([]int(nil), reqs...)
	<-g.release
	out := make([]int, len(reqs))
	for i, r := range reqs {
		out[i] = r * 10
	}
	return out
}

// A lone request is decided alone and gets its own result.
func TestLoneRequestGoesAlone(t *testing.T) {
	g := newGate()
	close(g.release)
	q := New(8, 1, g.run)
	defer q.Close()
	res, err := q.Do(context.Background(), 7)
	require.NoError(t, err)
	require.Equal(t, 70, res)
	require.Equal(t, []int{7}, <-g.batches)
}

// Requests that arrive while the only worker is busy are decided together
// in the next batch, each with its own result, at most MaxBatch at a time.
func TestWaitingRequestsShareABatch(t *testing.T) {
	g := newGate()
	q := New(4, 1, g.run)
	defer q.Close()
	var wg sync.WaitGroup
	results := make([]int, 7)
	do := func(i int) {
		defer wg.Done()
		r, err := q.Do(context.Background(), i)
		require.NoError(t, err)
		results[i] = r
	}
	wg.Add(1)
	go do(0)
	require.Equal(t, []int{0}, <-g.batches) // the worker is now held in run
	for i := 1; i < 7; i++ {
		wg.Add(1)
		go do(i)
	}
	require.Eventually(t, func() bool { return len(q.reqs) == 6 }, testTimeout, pollEvery, "six requests queued behind the busy worker")
	close(g.release)
	wg.Wait()
	second, third := <-g.batches, <-g.batches
	require.Len(t, second, 4, "a batch takes up to MaxBatch of the waiting requests")
	require.Len(t, third, 2)
	require.ElementsMatch(t, []int{1, 2, 3, 4, 5, 6}, append(second, third...))
	for i, r := range results {
		require.Equal(t, i*10, r, "request %d got its own result", i)
	}
}

// Close decides what was queued before it, then refuses new requests; a
// caller whose context ends before its request is queued is told so and
// its request is never decided.
func TestCloseDrainsAndRefuses(t *testing.T) {
	g := newGate()
	q := New(1, 1, g.run)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = q.Do(context.Background(), 1)
	}()
	<-g.batches // worker held
	for i := 0; i < cap(q.reqs); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = q.Do(context.Background(), 2)
		}()
	}
	require.Eventually(t, func() bool { return len(q.reqs) == cap(q.reqs) }, testTimeout, pollEvery, "the queue is full")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := q.Do(ctx, 99)
	require.ErrorIs(t, err, context.Canceled, "not queued: the caller is told")

	closed := make(chan struct{})
	go func() { q.Close(); close(closed) }()
	<-q.stop // Close has begun while every request is still queued
	close(g.release)
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(testTimeout):
		t.Fatal("requests queued before Close were never decided")
	}
	<-closed
	decided := 1 + len(g.batches)
	require.Equal(t, 1+cap(q.reqs), decided, "every queued request was decided before Close returned")
	for len(g.batches) > 0 {
		require.NotContains(t, <-g.batches, 99)
	}
	_, err = q.Do(context.Background(), 3)
	require.True(t, errors.Is(err, ErrClosed))
}

const (
	testTimeout = 10 * time.Second // a backstop only
	pollEvery   = time.Millisecond
)
