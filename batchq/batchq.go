// Package batchq group-commits requests: each of a queue's workers takes
// the requests waiting (up to MaxBatch) and decides them in one call, so a
// lone request goes at once and concurrent ones share one transaction.
// The cross-registry and bridge accepters both use it; what differs
// between them is only the call that decides a batch.
package batchq

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrClosed is returned for a request offered after Close.
var ErrClosed = errors.New("batchq: closed")

// Queue decides requests of type Req in batches, one Res per request.
type Queue[Req, Res any] struct {
	run  func(ctx context.Context, reqs []Req) []Res
	max  int
	reqs chan *item[Req, Res]
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type item[Req, Res any] struct {
	ctx  context.Context
	req  Req
	res  Res
	done chan struct{}
}

// New starts workers loops deciding batches of at most maxBatch requests
// with run, which must return one result per request, in order. run gets
// the first caller's context detached from its cancellation: a batch
// outlives any one caller.
func New[Req, Res any](maxBatch, workers int, run func(ctx context.Context, reqs []Req) []Res) *Queue[Req, Res] {
	maxBatch, workers = max(maxBatch, 1), max(workers, 1)
	q := &Queue[Req, Res]{run: run, max: maxBatch, reqs: make(chan *item[Req, Res], 4*maxBatch), stop: make(chan struct{})}
	for range workers {
		q.wg.Add(1)
		go q.loop()
	}
	return q
}

// Do queues r and waits for its result. The error is ErrClosed after
// Close, or the context's error when ctx ends before r is queued; once
// queued, r is decided (it may commit), so Do waits for it whatever
// happens to ctx: a caller is never told an accepted request failed.
func (q *Queue[Req, Res]) Do(ctx context.Context, r Req) (Res, error) {
	it := &item[Req, Res]{ctx: ctx, req: r, done: make(chan struct{})}
	var zero Res
	select {
	case <-q.stop:
		return zero, ErrClosed
	default:
	}
	select {
	case q.reqs <- it:
	case <-q.stop:
		return zero, ErrClosed
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	<-it.done
	return it.res, nil
}

// Close stops the workers after the requests already queued are decided.
// Safe to call twice.
func (q *Queue[Req, Res]) Close() {
	q.once.Do(func() { close(q.stop) })
	q.wg.Wait()
}

func (q *Queue[Req, Res]) loop() {
	defer q.wg.Done()
	batch := make([]*item[Req, Res], 0, q.max)
	for {
		select {
		case <-q.stop:
			// Decide what was queued before the stop, one by one.
			for {
				select {
				case it := <-q.reqs:
					q.decide([]*item[Req, Res]{it})
				default:
					return
				}
			}
		case it := <-q.reqs:
			batch = append(batch[:0], it)
		fill:
			for len(batch) < q.max {
				select {
				case it := <-q.reqs:
					batch = append(batch, it)
				default:
					break fill
				}
			}
			q.decide(batch)
		}
	}
}

func (q *Queue[Req, Res]) decide(batch []*item[Req, Res]) {
	reqs := make([]Req, len(batch))
	for i, it := range batch {
		reqs[i] = it.req
	}
	res := q.run(context.WithoutCancel(batch[0].ctx), reqs)
	if len(res) != len(batch) {
		// A zero result would read as success: a broken run must not.
		panic(fmt.Sprintf("batchq: run returned %d results for %d requests", len(res), len(batch)))
	}
	for i, it := range batch {
		it.res = res[i]
		close(it.done)
	}
}
