package xfer

import (
	"context"
	"sync"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/payments"
)

// Accepter group-commits the acceptance of cross-registry transfers: each
// of Workers loops takes the requests waiting (up to MaxBatch) and accepts
// them in one transaction (ledgerstore.BeginXfers), so a lone request goes
// alone at once and concurrent ones share a commit.
type Accepter struct {
	Store    *ledgerstore.Store
	MaxBatch int // default 500
	Workers  int // default 4

	once sync.Once
	reqs chan *acceptReq
	stop chan struct{}
	wg   sync.WaitGroup
}

type acceptReq struct {
	ctx  context.Context
	r    ledgerstore.XferRequest
	res  ledgerstore.XferBegun
	done chan struct{}
}

func (a *Accepter) start() {
	a.once.Do(func() {
		if a.MaxBatch <= 0 || a.MaxBatch > ledgerstore.MaxXferBatch {
			a.MaxBatch = 500
		}
		if a.Workers <= 0 {
			a.Workers = 4
		}
		a.reqs = make(chan *acceptReq, 4*a.MaxBatch)
		a.stop = make(chan struct{})
		for range a.Workers {
			a.wg.Add(1)
			go a.loop()
		}
	})
}

var _ payments.Accepter = (*Accepter)(nil)

// Begin accepts r (see ledgerstore.BeginXfer for its contract).
func (a *Accepter) Begin(ctx context.Context, r ledgerstore.XferRequest) (ledgerstore.Xfer, error) {
	a.start()
	req := &acceptReq{ctx: ctx, r: r, done: make(chan struct{})}
	select {
	case a.reqs <- req:
	case <-a.stop:
		return ledgerstore.Xfer{}, apperr.New(apperr.Unavailable, "shutting down")
	case <-ctx.Done():
		return ledgerstore.Xfer{}, ctx.Err()
	}
	// Once queued the request is decided (it may commit): wait for it so
	// the caller never reports a failure for an accepted transfer.
	<-req.done
	return req.res.Xfer, req.res.Err
}

func (a *Accepter) loop() {
	defer a.wg.Done()
	batch := make([]*acceptReq, 0, a.MaxBatch)
	for {
		select {
		case <-a.stop:
			// Drain what was queued before the stop.
			for {
				select {
				case r := <-a.reqs:
					a.run([]*acceptReq{r})
				default:
					return
				}
			}
		case r := <-a.reqs:
			batch = append(batch[:0], r)
		fill:
			for len(batch) < a.MaxBatch {
				select {
				case r := <-a.reqs:
					batch = append(batch, r)
				default:
					break fill
				}
			}
			a.run(batch)
		}
	}
}

func (a *Accepter) run(batch []*acceptReq) {
	reqs := make([]ledgerstore.XferRequest, len(batch))
	for i, b := range batch {
		reqs[i] = b.r
	}
	// The batch outlives any one caller's context.
	res, err := a.Store.BeginXfers(context.WithoutCancel(batch[0].ctx), reqs)
	for i, b := range batch {
		if err != nil {
			b.res = ledgerstore.XferBegun{Err: err}
		} else {
			b.res = res[i]
		}
		close(b.done)
	}
}

// Close stops the loops after the queued requests are decided.
func (a *Accepter) Close() {
	a.start()
	close(a.stop)
	a.wg.Wait()
}
