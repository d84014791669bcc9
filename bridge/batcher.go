package bridge

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// BatcherOptions tune the batching of bridge operations per peer frame.
type BatcherOptions struct {
	// MaxBatch bounds one BridgeBatch workflow (default 500; 1 starts
	// one BridgeTransfer/BridgeRedemption per operation instead).
	MaxBatch int
	// MaxInFlight bounds the batch workflows of one pair at a time
	// (default 4): while they all run, arrivals wait for the next batch.
	MaxInFlight int
	// MaxBacklog bounds accepted operations of a pair not yet carried to
	// their end by a batch (default 3 × MaxBatch); past it, accepting
	// waits for room and fails with Unavailable when the caller's
	// deadline ends first.
	MaxBacklog int
}

func (o BatcherOptions) withDefaults() BatcherOptions {
	if o.MaxBatch <= 0 {
		o.MaxBatch = workflows.MaxBridgeBatch
	}
	o.MaxBatch = min(o.MaxBatch, workflows.MaxBridgeBatch)
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 4
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = 3 * o.MaxBatch
	}
	return o
}

// Batcher groups the operations of one (this frame, peer frame) pair into
// BridgeBatch workflows: with fewer than MaxInFlight batches running an
// operation starts a batch at once (a lone operation pays no wait), and
// while they all run arrivals accumulate into the next one. Its memory is
// an optimisation: an operation accepted and never carried is found by
// the service's recovery.
type Batcher struct {
	Frame     string
	Temporal  client.Client
	TaskQueue string
	Opts      BatcherOptions
	Log       *slog.Logger

	mu       sync.Mutex
	pairs    map[string]*pairQueue
	carrying map[uuid.UUID]bool // queued or in a running batch
	runs     map[uuid.UUID]*batchRun
}

// batchRun is one running batch; settled closes once the batch committed
// the completion of what the peer applied.
type batchRun struct {
	settled chan struct{}
	once    sync.Once
}

type pairQueue struct {
	slots    chan struct{} // one per accepted, uncarried operation
	pending  []uuid.UUID
	inFlight int
}

func (b *Batcher) pair(peer string) *pairQueue {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pairs == nil {
		b.pairs = map[string]*pairQueue{}
	}
	q := b.pairs[peer]
	if q == nil {
		q = &pairQueue{slots: make(chan struct{}, b.Opts.withDefaults().MaxBacklog)}
		b.pairs[peer] = q
	}
	return q
}

// Admit reserves room for one operation with peer, waiting while the
// pair's backlog is full. The caller releases it when it does not submit.
func (b *Batcher) Admit(ctx context.Context, peer string) (release func(), err error) {
	q := b.pair(peer)
	select {
	case q.slots <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-q.slots }) }, nil
	case <-ctx.Done():
		return nil, apperr.New(apperr.Unavailable, "the bridge to frame %s is at its backlog limit; retry with the same Idempotency-Key", clip(peer))
	}
}

// Submit queues an admitted operation; its room is released when the
// batch that carried it ends.
func (b *Batcher) Submit(peer string, id uuid.UUID) {
	q := b.pair(peer)
	b.mu.Lock()
	q.pending = append(q.pending, id)
	if b.carrying == nil {
		b.carrying = map[uuid.UUID]bool{}
	}
	b.carrying[id] = true
	b.mu.Unlock()
	b.kick(peer, q)
}

func (b *Batcher) kick(peer string, q *pairQueue) {
	o := b.Opts.withDefaults()
	for {
		b.mu.Lock()
		if q.inFlight >= o.MaxInFlight || len(q.pending) == 0 {
			b.mu.Unlock()
			return
		}
		n := min(len(q.pending), o.MaxBatch)
		batch := append([]uuid.UUID(nil), q.pending[:n]...)
		q.pending = q.pending[n:]
		q.inFlight++
		br := &batchRun{settled: make(chan struct{})}
		if b.runs == nil {
			b.runs = map[uuid.UUID]*batchRun{}
		}
		for _, id := range batch {
			b.runs[id] = br
		}
		b.mu.Unlock()
		go b.run(peer, q, batch, br)
	}
}

// Settled is told that operations were completed by their batch: the
// batch's turn of the pair ends then (the next batch starts) rather than
// when its workflow's result arrives, a round trip later. Operations the
// batch handed to their own sagas keep their backlog room until the
// batch workflow ends.
func (b *Batcher) Settled(ids []uuid.UUID) {
	b.mu.Lock()
	var rs []*batchRun
	for _, id := range ids {
		if r := b.runs[id]; r != nil {
			rs = append(rs, r)
		}
	}
	b.mu.Unlock()
	for _, r := range rs {
		r.once.Do(func() { close(r.settled) })
	}
}

func (b *Batcher) run(peer string, q *pairQueue, ids []uuid.UUID, br *batchRun) {
	var turn sync.Once
	endTurn := func() {
		turn.Do(func() {
			b.mu.Lock()
			q.inFlight--
			b.mu.Unlock()
			b.kick(peer, q)
		})
	}
	finished := make(chan struct{})
	go func() {
		select {
		case <-br.settled:
			endTurn()
		case <-finished:
		}
	}()
	defer func() {
		close(finished)
		for range ids {
			<-q.slots
		}
		b.mu.Lock()
		for _, id := range ids {
			delete(b.carrying, id)
			delete(b.runs, id)
		}
		b.mu.Unlock()
		endTurn()
	}()
	ctx := context.Background()
	run, err := b.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.BridgeBatchWorkflowID(ids[0]), TaskQueue: b.TaskQueue,
		TypedSearchAttributes: workflows.BridgeBatchSearchAttributes(b.Frame, peer, ids),
		// The worker runs in this process: the first task comes back in
		// the start response.
		EnableEagerStart: true,
	}, workflows.BridgeBatchWorkflowName, workflows.BridgeBatchInput{SourceFrame: b.Frame, TargetFrame: peer, TransferIDs: ids})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return
	}
	if err != nil {
		b.log().Warn("bridge batch not started; recovery will carry its operations", "peer", peer, "transfers", len(ids), "err", err)
		return
	}
	if err := run.Get(ctx, nil); err != nil {
		b.log().Warn("bridge batch failed; recovery will carry what it left", "peer", peer, "workflow", run.GetID(), "err", err)
	}
}

// Carrying reports whether operation id is queued or in a running batch
// (recovery leaves those alone).
func (b *Batcher) Carrying(id uuid.UUID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.carrying[id]
}

func (b *Batcher) log() *slog.Logger {
	if b.Log == nil {
		return slog.Default()
	}
	return b.Log
}
