package ledgerstore

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// Group-commit limits.
const (
	DefaultMaxBatch  = 256
	MaxMaxBatch      = 1024
	DefaultWorkers   = 2
	MaxWorkers       = 8
	DefaultQueueSize = 8192
	MaxQueueSize     = 65536
)

var (
	batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ledger_group_commit_batch_size",
		Help:    "Transfers per group-commit transaction.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
	})
	batchSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ledger_group_commit_batch_seconds",
		Help:    "Duration of a group-commit transaction, commit included.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	batchFallbacks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_group_commit_fallbacks_total",
		Help: "Batches whose transaction failed as a whole and were retried one transfer per transaction.",
	})
	staleBatches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_transfer_batches_stale_total",
		Help: "Optimistic transfer transactions rerun with locks taken first because balances moved underneath.",
	})
	transfersTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_transfers_total",
		Help: "Transfers decided by the group committer, by outcome (ok, replayed, or the error code).",
	}, []string{"outcome"})
)

// Collectors returns the package's Prometheus collectors for registration.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{batchSize, batchSeconds, batchFallbacks, staleBatches, transfersTotal}
}

// GroupCommitOptions bound a GroupCommitter; zero values take the defaults.
type GroupCommitOptions struct {
	// MaxBatch is the most transfers in one transaction (default 256, ≤ 1024).
	MaxBatch int
	// Workers is how many batches may be in flight at once (default 2, ≤ 8):
	// while one batch waits for its commit's fsync, the next is prepared.
	// Batches that share accounts serialise on their row locks, which are
	// always taken in the same order.
	Workers int
	// QueueSize bounds transfers waiting for a batch (default 8192). A full
	// queue makes Transfer wait (backpressure) until its context ends.
	QueueSize int
}

// GroupCommitter batches concurrently submitted transfers into shared
// transactions (see the package documentation). Batching is natural: a
// worker takes whatever is queued, up to MaxBatch, without waiting for more,
// so a lone transfer commits immediately and a burst shares one fsync.
type GroupCommitter struct {
	s        *Store
	o        GroupCommitOptions
	in       chan *xfer
	stop     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// NewGroupCommitter starts the workers. Call Close to stop them.
func (s *Store) NewGroupCommitter(o GroupCommitOptions) *GroupCommitter {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	o.MaxBatch = min(o.MaxBatch, MaxMaxBatch)
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	o.Workers = min(o.Workers, MaxWorkers)
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	o.QueueSize = min(o.QueueSize, MaxQueueSize)
	g := &GroupCommitter{s: s, o: o, in: make(chan *xfer, o.QueueSize), stop: make(chan struct{}), stopped: make(chan struct{})}
	for range o.Workers {
		g.wg.Add(1)
		go g.work()
	}
	go func() { g.wg.Wait(); close(g.stopped) }()
	return g
}

// Transfer has the contract of Store.Transfer, committed through a shared
// batch transaction. If ctx ends after the transfer was queued, Transfer
// returns Unavailable and the transfer may or may not commit: retry with the
// same idempotency key to learn the outcome. After Close it returns
// Unavailable.
func (g *GroupCommitter) Transfer(ctx context.Context, req TransferRequest) (Transfer, error) {
	if err := req.Validate(); err != nil {
		return Transfer{}, err
	}
	it := &xfer{req: req, done: make(chan struct{})}
	select {
	case <-g.stop:
		return Transfer{}, apperr.New(apperr.Unavailable, "ledger is shutting down")
	default:
	}
	select {
	case g.in <- it:
	case <-g.stop:
		return Transfer{}, apperr.New(apperr.Unavailable, "ledger is shutting down")
	case <-ctx.Done():
		return Transfer{}, apperr.Wrap(ctx.Err(), apperr.Unavailable, "transfer not queued: %v", ctx.Err())
	}
	select {
	case <-it.done:
		return it.res, it.err
	case <-g.stopped:
		select {
		case <-it.done:
			return it.res, it.err
		default:
			// Queued after the workers' final drain: never applied.
			return Transfer{}, apperr.New(apperr.Unavailable, "ledger is shutting down")
		}
	case <-ctx.Done():
		return Transfer{}, apperr.Wrap(ctx.Err(), apperr.Unavailable,
			"transfer outcome unknown (%v); retry with the same idempotency key", ctx.Err())
	}
}

// Close stops accepting transfers, commits everything already queued and
// waits for the workers to finish.
func (g *GroupCommitter) Close() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.stopped
}

func (g *GroupCommitter) work() {
	defer g.wg.Done()
	batch := make([]*xfer, 0, g.o.MaxBatch)
	for {
		var first *xfer
		select {
		case first = <-g.in:
		case <-g.stop:
			// Drain what was queued before the stop.
			for {
				batch = batch[:0]
				g.fill(&batch)
				if len(batch) == 0 {
					return
				}
				g.run(batch)
			}
		}
		batch = append(batch[:0], first)
		g.fill(&batch)
		g.run(batch)
	}
}

// fill appends queued transfers to batch without waiting, up to MaxBatch.
func (g *GroupCommitter) fill(batch *[]*xfer) {
	for len(*batch) < g.o.MaxBatch {
		select {
		case it := <-g.in:
			*batch = append(*batch, it)
		default:
			return
		}
	}
}

// run commits one batch and completes its transfers. The work is not tied
// to any submitter's context: a caller that gives up must not fail the
// others. A bounded timeout keeps a wedged database from holding workers.
func (g *GroupCommitter) run(batch []*xfer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := g.s.runBatch(ctx, batch)
	if err != nil {
		// Isolate the failure: every transfer gets a transaction of its own.
		batchFallbacks.Inc()
		g.s.log.Warn("group commit batch failed; retrying transfers one by one", "size", len(batch), "err", err)
		for _, it := range batch {
			g.s.runSingle(ctx, it)
		}
	}
	batchSize.Observe(float64(len(batch)))
	batchSeconds.Observe(time.Since(start).Seconds())
	for _, it := range batch {
		switch {
		case it.err != nil:
			transfersTotal.WithLabelValues(string(apperr.CodeOf(it.err))).Inc()
		case it.res.Replayed || it.res.Recorded != nil:
			transfersTotal.WithLabelValues("replayed").Inc()
		default:
			transfersTotal.WithLabelValues("ok").Inc()
		}
		close(it.done)
	}
}
