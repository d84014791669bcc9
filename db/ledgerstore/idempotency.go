package ledgerstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
)

// IdempotencyBatcher is an api.IdempotencyStore (same contract and table as
// db.IdempotencyStore) that group-commits: Claim and Complete calls arriving
// concurrently share one transaction each, so a busy API pays one commit
// (and one fsync) per batch instead of two per request. Records are as
// durable as db.IdempotencyStore's: a call returns only after its batch
// committed. Release is rare (5xx) and runs on its own.
//
// Limits: batches of at most MaxIdempotencyBatch; a batch that fails as a
// whole fails every call in it (the middleware then answers 503 and the
// client retries with the same key).
type IdempotencyBatcher struct {
	plain   *db.IdempotencyStore
	store   *db.Store
	q       *tegdb.Queries
	claims  chan *claimReq
	done    chan *completeReq
	stop    chan struct{}
	stopped sync.WaitGroup
	once    sync.Once
}

// MaxIdempotencyBatch bounds the calls sharing one transaction.
const MaxIdempotencyBatch = 512

type claimReq struct {
	scope, key, method, path string
	hash                     []byte
	now                      time.Time
	claimed                  bool
	rec                      db.IdempotencyRecord
	err                      error
	ready                    chan struct{}
}

type completeReq struct {
	scope, key string
	status     int
	body       []byte
	now        time.Time
	err        error
	ready      chan struct{}
}

// NewIdempotencyBatcher starts the batching goroutines on pool (the TEG
// database). Close stops them.
func NewIdempotencyBatcher(pool *pgxpool.Pool) *IdempotencyBatcher {
	b := &IdempotencyBatcher{
		plain:  db.NewIdempotencyStore(pool),
		store:  db.NewStore(pool, "teg"),
		q:      tegdb.New(),
		claims: make(chan *claimReq, 4*MaxIdempotencyBatch),
		done:   make(chan *completeReq, 4*MaxIdempotencyBatch),
		stop:   make(chan struct{}),
	}
	b.stopped.Add(2)
	go b.loopClaims()
	go b.loopCompletes()
	return b
}

// Close stops accepting calls after the queued ones are done.
func (b *IdempotencyBatcher) Close() {
	b.once.Do(func() { close(b.stop) })
	b.stopped.Wait()
}

var errBatcherClosed = fmt.Errorf("ledgerstore: idempotency batcher closed")

// Claim implements api.IdempotencyStore.
func (b *IdempotencyBatcher) Claim(ctx context.Context, scope, key string, hash []byte, method, path string, now time.Time) (bool, db.IdempotencyRecord, error) {
	if hash == nil {
		hash = []byte{} // NOT NULL column; a nil slice would encode as NULL
	}
	r := &claimReq{scope: scope, key: key, hash: hash, method: method, path: path, now: now, ready: make(chan struct{})}
	if err := enqueue(ctx, b.claims, r, b.stop); err != nil {
		return false, db.IdempotencyRecord{}, err
	}
	select {
	case <-r.ready:
		if !r.claimed && r.err == nil && r.rec.Abandoned(hash, now) {
			// An abandoned claim (its process died): the unbatched store
			// takes it over for this retry (rare, so not batched).
			return b.plain.Claim(ctx, scope, key, hash, method, path, now)
		}
		return r.claimed, r.rec, r.err
	case <-ctx.Done():
		// The batch carrying this claim may still commit it; nobody would
		// then complete or release it, and the key would answer "in
		// progress" until swept. Release it once the batch is done.
		b.stopped.Add(1)
		go func() {
			defer b.stopped.Done()
			<-r.ready
			if r.claimed && r.err == nil {
				rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = b.plain.Release(rctx, scope, key)
			}
		}()
		return false, db.IdempotencyRecord{}, ctx.Err()
	}
}

// Complete implements api.IdempotencyStore.
func (b *IdempotencyBatcher) Complete(ctx context.Context, scope, key string, status int, body []byte, now time.Time) error {
	if body == nil {
		body = []byte{}
	}
	r := &completeReq{scope: scope, key: key, status: status, body: body, now: now, ready: make(chan struct{})}
	if err := enqueue(ctx, b.done, r, b.stop); err != nil {
		return err
	}
	select {
	case <-r.ready:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release implements api.IdempotencyStore (unbatched).
func (b *IdempotencyBatcher) Release(ctx context.Context, scope, key string) error {
	return b.plain.Release(ctx, scope, key)
}

func enqueue[T any](ctx context.Context, ch chan T, v T, stop chan struct{}) error {
	select {
	case <-stop:
		return errBatcherClosed
	default:
	}
	select {
	case ch <- v:
		return nil
	case <-stop:
		return errBatcherClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// collect takes one queued item (blocking) and then whatever else is queued,
// up to MaxIdempotencyBatch. ok is false once stopped and drained.
func collect[T any](ch chan T, stop chan struct{}) (batch []T, ok bool) {
	select {
	case v := <-ch:
		batch = append(batch, v)
	case <-stop:
		select {
		case v := <-ch:
			batch = append(batch, v)
		default:
			return nil, false
		}
	}
	for len(batch) < MaxIdempotencyBatch {
		select {
		case v := <-ch:
			batch = append(batch, v)
		default:
			return batch, true
		}
	}
	return batch, true
}

func (b *IdempotencyBatcher) loopClaims() {
	defer b.stopped.Done()
	for {
		batch, ok := collect(b.claims, b.stop)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := b.store.Tx(ctx, func(tx pgx.Tx) error { return b.claimBatch(ctx, tx, batch, 0) })
		cancel()
		for _, r := range batch {
			if err != nil {
				r.claimed, r.rec, r.err = false, db.IdempotencyRecord{}, err
			}
			close(r.ready)
		}
	}
}

// claimRounds bounds how often one batch claims again keys whose record
// vanished between its insert and its read (see claimBatch).
const claimRounds = 3

func (b *IdempotencyBatcher) claimBatch(ctx context.Context, tx pgx.Tx, batch []*claimReq, round int) error {
	type sk struct{ scope, key string }
	first := make(map[sk]*claimReq, len(batch))
	p := tegdb.IdempotencyKeysClaimParams{Now: batch[0].now}
	for _, r := range batch {
		r.claimed, r.rec, r.err = false, db.IdempotencyRecord{}, nil
		k := sk{r.scope, r.key}
		if _, dup := first[k]; dup {
			continue // a later duplicate sees the first one's claim: "in progress"
		}
		first[k] = r
		// One timestamp per batch: the calls arrived within the same moment.
		p.Scopes = append(p.Scopes, r.scope)
		p.Keys = append(p.Keys, r.key)
		p.RequestHashes = append(p.RequestHashes, r.hash)
		p.Methods = append(p.Methods, r.method)
		p.Paths = append(p.Paths, r.path)
	}
	inserted, err := b.q.IdempotencyKeysClaim(ctx, tx, p)
	if err != nil {
		return err
	}
	won := make(map[sk]bool, len(inserted))
	for _, row := range inserted {
		won[sk{row.Scope, row.Key}] = true
		first[sk{row.Scope, row.Key}].claimed = true
	}
	var gp tegdb.IdempotencyKeysGetParams
	for _, r := range batch {
		if k := (sk{r.scope, r.key}); !won[k] || first[k] != r {
			gp.Scopes = append(gp.Scopes, r.scope)
			gp.Keys = append(gp.Keys, r.key)
		}
	}
	if len(gp.Keys) == 0 {
		return nil
	}
	rows, err := b.q.IdempotencyKeysGet(ctx, tx, gp)
	if err != nil {
		return err
	}
	recs := make(map[sk]db.IdempotencyRecord, len(rows))
	for _, row := range rows {
		rec := db.IdempotencyRecord{RequestHash: row.RequestHash, Method: row.Method, Path: row.Path, Body: row.ResponseBody, CreatedAt: row.CreatedAt}
		if row.StatusCode != nil {
			rec.StatusCode = int(*row.StatusCode)
		}
		recs[sk{row.Scope, row.Key}] = rec
	}
	var vanished []*claimReq
	for _, r := range batch {
		k := sk{r.scope, r.key}
		if won[k] && first[k] == r {
			continue
		}
		rec, ok := recs[k]
		if !ok {
			// The record our insert met was released (an abandoned claim)
			// or swept before this read: the key is free, so claim again.
			vanished = append(vanished, r)
			continue
		}
		r.rec = rec
	}
	if len(vanished) == 0 {
		return nil
	}
	if round+1 < claimRounds {
		return b.claimBatch(ctx, tx, vanished, round+1)
	}
	for _, r := range vanished {
		r.err = fmt.Errorf("idempotency key %q vanished while claiming; retry", r.key)
	}
	return nil
}

func (b *IdempotencyBatcher) loopCompletes() {
	defer b.stopped.Done()
	for {
		batch, ok := collect(b.done, b.stop)
		if !ok {
			return
		}
		p := tegdb.IdempotencyKeysCompleteParams{Now: batch[0].now}
		seen := make(map[[2]string]bool, len(batch))
		for _, r := range batch {
			if seen[[2]string{r.scope, r.key}] {
				continue // completed once; the first response wins, as with db.IdempotencyStore
			}
			seen[[2]string{r.scope, r.key}] = true
			p.Scopes = append(p.Scopes, r.scope)
			p.Keys = append(p.Keys, r.key)
			p.StatusCodes = append(p.StatusCodes, int32(r.status))
			p.ResponseBodies = append(p.ResponseBodies, r.body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := b.store.Tx(ctx, func(tx pgx.Tx) error { return b.q.IdempotencyKeysComplete(ctx, tx, p) })
		cancel()
		for _, r := range batch {
			r.err = err
			close(r.ready)
		}
	}
}
