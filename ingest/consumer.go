package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/theprotocol-dev/theprotocol/events"
)

// HeaderSourceSeq carries the relay-assigned per-source sequence number.
const HeaderSourceSeq = "source_seq"

// Batches written at once by a consumer. Their event inserts overlap each
// other and the projection phase (one at a time) of another; three kept
// both cores busier than two.
const (
	DefaultInFlight = 3
	MaxInFlight     = 4
)

// ConsumerOptions configure the frame's EventStore consumer.
type ConsumerOptions struct {
	Brokers  []string
	Topic    string
	Group    string // default eventstore-<frame>
	MaxBatch int    // records per transaction, default DefaultBatch, at most MaxBatch
	// MaxInFlight is how many batches are written at once (default
	// DefaultInFlight, at most MaxInFlight).
	MaxInFlight int
	Log         *slog.Logger
	// AfterApply, if set, runs after the database commit and before the
	// Kafka offset commit; tests use it to crash the consumer there.
	AfterApply func(BatchResult) error
	// Kafka are extra client options (TLS, SASL).
	Kafka []kgo.Opt
}

// Consumer feeds the frame's topic into an Applier: poll a batch, apply it
// in one transaction, then commit offsets. A crash between the two
// redelivers the batch, which the idempotency keys absorb. The next batch is
// polled and decoded while earlier ones are written, and up to
// MaxInFlight batches are written at once (their event inserts overlap;
// see ApplyPrepared). Measured with BenchmarkKafkaToEventStore: one batch
// in flight was ~1.26× the strictly sequential loop; two were a further
// 1.23× (72,646 vs 59,181 records/s in one run), three ~1.1× more than two
// (88,575 / 86,258 vs 72,305 / 81,391).
type Consumer struct {
	a    *Applier
	opts ConsumerOptions
}

// NewConsumer returns a consumer for a.
func NewConsumer(a *Applier, o ConsumerOptions) *Consumer {
	if o.Group == "" {
		o.Group = "eventstore-" + a.Frame
	}
	if o.MaxBatch <= 0 || o.MaxBatch > MaxBatch {
		o.MaxBatch = DefaultBatch
	}
	if o.MaxInFlight <= 0 || o.MaxInFlight > MaxInFlight {
		o.MaxInFlight = DefaultInFlight
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Consumer{a: a, opts: o}
}

// Run consumes until ctx ends, reconnecting with backoff after errors
// (Kafka or Postgres down): offsets only move after a commit, so nothing is
// lost while it retries.
func (c *Consumer) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		err := c.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.opts.Log.Warn("eventstore consumer restarting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (c *Consumer) runOnce(ctx context.Context) error {
	var rebalanceWaiting atomic.Bool
	cl, err := newKafkaClient(c.opts.Kafka,
		kgo.SeedBrokers(c.opts.Brokers...),
		kgo.ConsumerGroup(c.opts.Group),
		kgo.ConsumeTopics(c.opts.Topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(50*time.Millisecond),
		kgo.FetchMaxBytes(64<<20),
		// Signed records carry ~330 bytes of proof that compress poorly:
		// at kgo's default of 1 MiB per partition, polls under a backlog
		// came back with ~14,000 records instead of the batch's 20,000.
		kgo.FetchMaxPartitionBytes(8<<20),
		// A rebalance (a member joining or leaving) waits for the next
		// AllowRebalance: this says one is waiting.
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { rebalanceWaiting.Store(true) }),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	// Deferred calls run last-in first-out: wait for the write in flight,
	// then unblock rebalancing (Close leaves the group, which a blocked
	// rebalance would hang), then close.
	defer cl.AllowRebalance()
	// Up to MaxInFlight batches are written at once (their event inserts
	// overlap, their projection phases take turns; see ApplyPrepared)
	// while the next is polled and decoded (Prepare needs no database).
	// Offsets are committed in poll order, each batch's only after its
	// transaction and every earlier batch's: a failure leaves the failed
	// batch and everything after it to be redelivered, which the
	// idempotency keys absorb even where a later batch already committed.
	var queue []*inflight
	defer func() {
		for _, f := range queue {
			<-f.done // never leave a write running past return
		}
	}()
	// finish waits for the oldest batch in flight and commits its offsets.
	finish := func() error {
		if len(queue) == 0 {
			return nil
		}
		f := queue[0]
		<-f.done
		queue = queue[1:]
		if f.err != nil {
			return fmt.Errorf("apply batch: %w", f.err)
		}
		if c.opts.AfterApply != nil {
			if err := c.opts.AfterApply(f.res); err != nil {
				return err
			}
		}
		if err := cl.CommitRecords(ctx, f.recs...); err != nil {
			return fmt.Errorf("commit offsets: %w", err)
		}
		return nil
	}
	finishAll := func() error {
		for len(queue) > 0 {
			if err := finish(); err != nil {
				return err
			}
		}
		return nil
	}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	lastAllow := time.Now()
	for {
		select {
		case <-tick.C:
			if err := c.a.ReloadPolicy(ctx); err != nil {
				c.opts.Log.Warn("reload emission policy", "err", err)
			}
			if err := c.a.ReloadKeys(); err != nil {
				c.opts.Log.Warn("reload trusted event signing keys", "err", err)
			}
		default:
		}
		// While batches are in flight, the poll also ends when the oldest
		// does, so its offsets are committed promptly even if no more
		// records arrive (PollRecords otherwise waits for data).
		pollCtx, stopPoll := context.WithCancel(ctx)
		if len(queue) > 0 {
			go func(done <-chan struct{}) {
				select {
				case <-done:
					stopPoll()
				case <-pollCtx.Done():
				}
			}(queue[0].done)
		}
		var fetchErr error
		poll := func(max int) []*kgo.Record {
			fetches := cl.PollRecords(pollCtx, max)
			fetches.EachError(func(topic string, p int32, err error) {
				if !errors.Is(err, context.Canceled) {
					fetchErr = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
				}
			})
			return fetches.Records()
		}
		recs := poll(c.opts.MaxBatch)
		// While every write slot is busy, keep filling the batch until the
		// oldest write ends: a larger batch nets more postings into each
		// projection row, and it could not start any sooner.
		for len(recs) > 0 && len(recs) < c.opts.MaxBatch && len(queue) >= c.opts.MaxInFlight && pollCtx.Err() == nil && fetchErr == nil {
			recs = append(recs, poll(c.opts.MaxBatch-len(recs))...)
		}
		stopPoll()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(recs) == 0 {
			// Commit what completed; with nothing new to write, wait for
			// the rest before letting a rebalance through.
			if err := finishAll(); err != nil {
				return err
			}
			cl.AllowRebalance()
			lastAllow = time.Now()
			if fetchErr != nil {
				return fetchErr
			}
			continue
		}
		batch := make([]Record, len(recs))
		for i, r := range recs {
			batch[i] = recordOf(r)
		}
		prep, err := c.a.Prepare(batch)
		if err != nil {
			return err
		}
		for len(queue) >= c.opts.MaxInFlight {
			if err := finish(); err != nil {
				return err
			}
		}
		// Read before the write starts: ApplyPrepared may still mark items
		// of the batch (quarantine), and a batch judged to change the
		// policy here at worst waits for nothing.
		changesPolicy := prep.ChangesPolicy()
		f := &inflight{recs: recs, done: make(chan struct{})}
		queue = append(queue, f)
		go func() {
			defer close(f.done)
			f.res, f.err = c.a.ApplyPrepared(ctx, prep)
		}()
		// A batch that changes the emission policy is written alone: the
		// batches after it are checked against the policy it leads to
		// (ApplyPrepared reloads it), as when one batch was in flight.
		if changesPolicy {
			if err := finishAll(); err != nil {
				return err
			}
		}
		// Polling blocks group rebalances until AllowRebalance, which is
		// called with nothing in flight (every batch committed, offsets
		// included): as soon as a rebalance is waiting, and at least every
		// AllowRebalanceEvery in case that signal were missed. Draining
		// the writes every second instead, whether or not a member was
		// waiting, cost ~10% of ingest throughput in pipeline bubbles.
		if rebalanceWaiting.Swap(false) || time.Since(lastAllow) >= AllowRebalanceEvery {
			if err := finishAll(); err != nil {
				return err
			}
			cl.AllowRebalance()
			lastAllow = time.Now()
		}
	}
}

// AllowRebalanceEvery bounds how long the consumer blocks group
// rebalances under steady traffic when it has not been told one is
// waiting (kgo's rebalance timeout, 60 s by default, is how long a
// rebalance may take before members are dropped).
const AllowRebalanceEvery = 15 * time.Second

// inflight is a batch being applied in the background.
type inflight struct {
	recs []*kgo.Record
	done chan struct{}
	res  BatchResult
	err  error
}

// recordOf takes a Kafka record's envelope and its relay headers (a
// sequence number that does not parse counts as none).
func recordOf(r *kgo.Record) Record {
	rec := Record{Value: r.Value}
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderSourceSeq:
			if n, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				rec.SourceSeq = n
			}
		case events.HeaderAuth:
			rec.Auth = h.Value
		}
	}
	return rec
}
