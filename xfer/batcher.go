package xfer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/payments"
	"github.com/theprotocol-dev/theprotocol/workflows"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// BatcherOptions bound the batcher. Zero values take defaults.
type BatcherOptions struct {
	// MaxBatch is the most transfers one workflow carries (default 500).
	// 1 turns batching off: every transfer gets its own workflow.
	MaxBatch int
	// MaxAge is how long an arrival waits for the in-flight workflow of
	// its pair before a second one starts anyway (default 250 ms).
	MaxAge time.Duration
	// MaxInFlight bounds the workflows in flight per (source, target)
	// pair (default 4; with MaxBatch 1: 256).
	MaxInFlight int
	// RecoverAfter: transfers still unsettled this long after acceptance
	// whose workflow is not running are settled again (default 1 min).
	RecoverAfter time.Duration
	// MaxBacklog bounds the accepted, not yet settled transfers per pair
	// (waiting for a workflow or in one; default 3 × MaxBatch, at least
	// 64). Admit makes new transfers wait while it is reached: when
	// callers accept faster than settlement, the queue stays bounded (and
	// with it accept→committed latency) instead of growing without limit.
	MaxBacklog int
}

func defaultBacklog(maxBatch int) int { return max(3*maxBatch, 64) }

// Batcher groups accepted cross-registry transfers into settlement
// workflows per (source, target) pair — group commit applied to sagas. A
// pair with no workflow in flight starts one at once, so an idle system
// settles each transfer in its own workflow at the lowest latency; while
// one is in flight, arrivals accumulate and start the next workflow when
// it finishes, when MaxBatch are waiting, or when the oldest waited MaxAge.
// The batcher's memory is only an optimisation: every accepted transfer is
// a pending xfers row, and Recover restarts the settlement of any row whose
// workflow is gone (a crash between acceptance and start).
type Batcher struct {
	Source    string
	TaskQueue string
	Temporal  client.Client
	Store     *ledgerstore.Store
	Log       *slog.Logger
	Opts      BatcherOptions

	mu     sync.Mutex
	pairs  map[string]*pairQueue
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// followTimeout bounds how long the batcher counts a workflow as in flight.
const followTimeout = 30 * time.Second

type pairQueue struct {
	room     chan struct{} // closed (and dropped) when the backlog shrinks
	settling int           // transfers in workflows in flight
	pending  []activities.XferItem
	oldest   time.Time
	inflight int
	timer    *time.Timer
}

func (b *Batcher) init() {
	b.once.Do(func() {
		o := &b.Opts
		if o.MaxBatch <= 0 {
			o.MaxBatch = 500
		}
		o.MaxBatch = min(o.MaxBatch, workflows.MaxSettlementBatch)
		if o.MaxAge <= 0 {
			o.MaxAge = 250 * time.Millisecond
		}
		if o.MaxInFlight <= 0 {
			o.MaxInFlight = 4
			if o.MaxBatch == 1 {
				o.MaxInFlight = 256
			}
		}
		if o.RecoverAfter <= 0 {
			o.RecoverAfter = time.Minute
		}
		if o.MaxBacklog <= 0 {
			o.MaxBacklog = defaultBacklog(o.MaxBatch)
		}
		if b.Log == nil {
			b.Log = slog.New(slog.DiscardHandler)
		}
		b.pairs = map[string]*pairQueue{}
		b.ctx, b.cancel = context.WithCancel(context.Background())
	})
}

// Configure changes the batch limits (MaxBatch, MaxAge, MaxInFlight; zero
// values take the defaults) for workflows started from now on.
func (b *Batcher) Configure(o BatcherOptions) {
	b.init()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Opts.MaxBatch = min(max(o.MaxBatch, 0), workflows.MaxSettlementBatch)
	if b.Opts.MaxBatch == 0 {
		b.Opts.MaxBatch = 500
	}
	b.Opts.MaxAge = o.MaxAge
	if b.Opts.MaxAge <= 0 {
		b.Opts.MaxAge = 250 * time.Millisecond
	}
	b.Opts.MaxInFlight = o.MaxInFlight
	if b.Opts.MaxInFlight <= 0 {
		b.Opts.MaxInFlight = 4
		if b.Opts.MaxBatch == 1 {
			b.Opts.MaxInFlight = 256
		}
	}
	b.Opts.MaxBacklog = o.MaxBacklog
	if b.Opts.MaxBacklog <= 0 {
		b.Opts.MaxBacklog = defaultBacklog(b.Opts.MaxBatch)
	}
	for _, q := range b.pairs {
		q.wake()
	}
}

var _ payments.Settlement = (*Batcher)(nil)

// Admit waits until the pair's backlog has room for one more transfer
// (see MaxBacklog), or ctx ends.
func (b *Batcher) Admit(ctx context.Context, target string) error {
	b.init()
	for {
		b.mu.Lock()
		q := b.pairs[target]
		if q == nil || len(q.pending)+q.settling < b.Opts.MaxBacklog {
			b.mu.Unlock()
			return nil
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		b.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// wake releases the callers waiting in Admit (they re-check).
func (q *pairQueue) wake() {
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}

// Add queues an accepted (pending) transfer for settlement.
func (b *Batcher) Add(x ledgerstore.Xfer) {
	b.init()
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.pairs[x.Target]
	if q == nil {
		q = &pairQueue{}
		b.pairs[x.Target] = q
	}
	if len(q.pending) == 0 {
		q.oldest = time.Now()
	}
	q.pending = append(q.pending, activities.XferItem{ID: x.ID, From: x.From, To: x.To, AmountUnits: x.AmountUnits, Memo: x.Memo})
	b.maybeFlushLocked(x.Target, q)
}

// maybeFlushLocked starts workflows for q while its rules allow.
func (b *Batcher) maybeFlushLocked(target string, q *pairQueue) {
	for len(q.pending) > 0 && q.inflight < b.Opts.MaxInFlight {
		full := len(q.pending) >= b.Opts.MaxBatch
		old := time.Since(q.oldest) >= b.Opts.MaxAge
		if q.inflight > 0 && !full && !old {
			if q.timer == nil {
				q.timer = time.AfterFunc(b.Opts.MaxAge-time.Since(q.oldest), func() {
					b.mu.Lock()
					defer b.mu.Unlock()
					q.timer = nil
					b.maybeFlushLocked(target, q)
				})
			}
			return
		}
		n := min(len(q.pending), b.Opts.MaxBatch)
		batch := append([]activities.XferItem(nil), q.pending[:n]...)
		q.pending = append(q.pending[:0], q.pending[n:]...)
		q.settling += n
		q.oldest = time.Now()
		q.inflight++
		b.wg.Add(1)
		go b.settle(target, batch, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE)
	}
}

// settle starts one settlement workflow and waits for it, then lets the
// pair's queue move on.
func (b *Batcher) settle(target string, batch []activities.XferItem, reuse enumspb.WorkflowIdReusePolicy) {
	defer b.wg.Done()
	defer b.release(target, len(batch))
	run, err := b.start(b.ctx, target, batch, reuse)
	if err != nil {
		// The rows stay pending; Recover starts them again.
		b.Log.Error("start settlement workflow", "target", target, "transfers", len(batch), "err", err)
		return
	}
	b.follow(run)
}

// release frees the pair's in-flight slot of a workflow of k transfers and
// lets the queue move on.
func (b *Batcher) release(target string, k int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.pairs[target]
	q.inflight--
	q.settling -= k
	q.wake()
	b.maybeFlushLocked(target, q)
}

// follow waits (bounded) for a started settlement workflow.
func (b *Batcher) follow(run client.WorkflowRun) {
	// A saga that parks (CompensationFailed) or stalls (CommitStalled)
	// keeps running in Temporal for as long as it takes; it must not hold
	// the pair's in-flight slot that long.
	ctx, cancel := context.WithTimeout(b.ctx, followTimeout)
	defer cancel()
	var res workflows.SettlementResult
	if err := run.Get(ctx, &res); err != nil && ctx.Err() == nil {
		b.Log.Error("settlement workflow failed", "workflow_id", run.GetID(), "err", err)
	}
}

func (b *Batcher) start(ctx context.Context, target string, batch []activities.XferItem, reuse enumspb.WorkflowIdReusePolicy) (client.WorkflowRun, error) {
	id := workflows.SettlementWorkflowID(b.Source, target, batch[0].ID)
	ids := make([]uuid.UUID, len(batch))
	for i, it := range batch {
		ids[i] = it.ID
	}
	if err := b.Store.SetXferWorkflow(ctx, id, ids); err != nil {
		return nil, err
	}
	run, err := b.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             b.TaskQueue,
		WorkflowIDReusePolicy: reuse,
		TypedSearchAttributes: workflows.SettlementSearchAttributes(b.Source, target, batch),
		// The worker runs in this process: the first workflow task is
		// handed to it in the start response (no matching round trip).
		EnableEagerStart: true,
	}, workflows.SettlementWorkflowName, workflows.SettlementInput{Source: b.Source, Target: target, Transfers: batch})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		// Already settling (a recovery raced the original start): follow it.
		return b.Temporal.GetWorkflow(ctx, id, ""), nil
	}
	return run, err
}

// Recover restarts the settlement of transfers accepted more than minAge
// ago that are still unsettled and whose workflow is not running (never
// started, or ended without settling them). It returns how many transfers
// it resubmitted.
//
// Every process of a registry runs recovery: passes are serialised by the
// registry's recovery lock (waiting for it), and a pass starts its
// workflows before it lets go, so the next pass, here or in another
// process, finds them running instead of settling the same transfers
// again. (Were a transfer ever carried by two workflows, the source's
// decision log would still settle it once: the first decision recorded
// stands and both follow it.)
func (b *Batcher) Recover(ctx context.Context, minAge time.Duration) (int, error) {
	b.init()
	n := 0
	err := b.Store.WithXferRecoveryLock(ctx, func() error {
		var err error
		n, err = b.recoverLocked(ctx, minAge)
		return err
	})
	return n, err
}

func (b *Batcher) recoverLocked(ctx context.Context, minAge time.Duration) (int, error) {
	xs, err := b.Store.UnsettledXfers(ctx, time.Now().Add(-minAge), ledgerstore.MaxXferBatch)
	if err != nil {
		return 0, err
	}
	running := map[string]bool{}
	var orphans []ledgerstore.Xfer
	for _, x := range xs {
		if x.WorkflowID != "" {
			alive, ok := running[x.WorkflowID]
			if !ok {
				d, err := b.Temporal.DescribeWorkflow(ctx, x.WorkflowID, "")
				alive = err == nil && d.RawResponse.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
				running[x.WorkflowID] = alive
			}
			if alive {
				continue
			}
		}
		orphans = append(orphans, x)
	}
	if len(orphans) == 0 {
		return 0, nil
	}
	// A workflow that finished between the listing and its description
	// settled its rows before it finished: read them again, so they are
	// not resubmitted as orphans.
	ids := make([]uuid.UUID, len(orphans))
	for i, x := range orphans {
		ids[i] = x.ID
	}
	now, err := b.Store.XferStatuses(ctx, ids)
	if err != nil {
		return 0, err
	}
	byTarget := map[string][]activities.XferItem{}
	var order []string
	for _, x := range orphans {
		if st := now[x.ID].Status; st != xferstate.Pending && st != xferstate.Committing && st != xferstate.Aborting {
			continue
		}
		if _, ok := byTarget[x.Target]; !ok {
			order = append(order, x.Target)
		}
		byTarget[x.Target] = append(byTarget[x.Target], activities.XferItem{ID: x.ID, From: x.From, To: x.To, AmountUnits: x.AmountUnits, Memo: x.Memo})
	}
	n := 0
	for _, target := range order {
		items := byTarget[target]
		for len(items) > 0 {
			b.mu.Lock()
			k := min(len(items), b.Opts.MaxBatch)
			b.mu.Unlock()
			batch := items[:k]
			items = items[k:]
			// Started here, under the lock (see Recover); only following
			// the workflow happens in the background. A failed or
			// terminated earlier run of the same batch ID may be
			// restarted; a completed one cannot (it settled its rows).
			run, err := b.start(ctx, target, batch, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY)
			if err != nil {
				// The rows stay unsettled; the next pass tries again.
				b.Log.Error("restart settlement workflow", "target", target, "transfers", k, "err", err)
				continue
			}
			b.mu.Lock()
			q := b.pairs[target]
			if q == nil {
				q = &pairQueue{}
				b.pairs[target] = q
			}
			q.inflight++
			q.settling += k
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer b.release(target, k)
				b.follow(run)
			}()
			n += k
		}
	}
	return n, nil
}

// RunRecovery calls Recover every interval until ctx ends.
func (b *Batcher) RunRecovery(ctx context.Context, interval time.Duration) {
	b.init()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := b.Recover(ctx, b.Opts.RecoverAfter); err != nil {
				b.Log.Warn("cross-registry recovery", "err", err)
			} else if n > 0 {
				b.Log.Info("cross-registry recovery resubmitted transfers", "transfers", n)
			}
		}
	}
}

// Close stops following workflows (they keep running in Temporal).
func (b *Batcher) Close() {
	b.init()
	b.cancel()
	b.wg.Wait()
}
