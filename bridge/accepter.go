package bridge

import (
	"context"
	"sync"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
)

// Accepter group-commits the first legs of bridge operations (locks and
// burns): each of Workers loops takes the requests waiting (up to
// MaxBatch) and records them in one transaction, so every send to a frame
// does not queue on its own for the escrow row. A lone request goes at
// once.
type Accepter struct {
	Store interface {
		BridgeStartMany(ctx context.Context, rs []ledgerstore.BridgeRequest) []ledgerstore.BridgeStarted
	}
	MaxBatch int // default 256
	Workers  int // default 2

	once sync.Once
	reqs chan *startReq
	stop chan struct{}
	wg   sync.WaitGroup
}

type startReq struct {
	ctx  context.Context
	r    ledgerstore.BridgeRequest
	res  ledgerstore.BridgeStarted
	done chan struct{}
}

func (a *Accepter) init() {
	a.once.Do(func() {
		if a.MaxBatch <= 0 {
			a.MaxBatch = 256
		}
		if a.Workers <= 0 {
			a.Workers = 2
		}
		a.reqs = make(chan *startReq, 4*a.MaxBatch)
		a.stop = make(chan struct{})
		for range a.Workers {
			a.wg.Add(1)
			go a.loop()
		}
	})
}

// Start records r (see ledgerstore.BridgeStart).
func (a *Accepter) Start(ctx context.Context, r ledgerstore.BridgeRequest) (ledgerstore.BridgeTransfer, error) {
	a.init()
	req := &startReq{ctx: ctx, r: r, done: make(chan struct{})}
	select {
	case a.reqs <- req:
	case <-a.stop:
		return ledgerstore.BridgeTransfer{}, apperr.New(apperr.Unavailable, "shutting down")
	case <-ctx.Done():
		return ledgerstore.BridgeTransfer{}, apperr.New(apperr.Unavailable, "the bridge is busy; retry with the same Idempotency-Key")
	}
	// Queued requests are decided (they may commit): wait, so a caller is
	// never told an accepted operation failed.
	<-req.done
	return req.res.Transfer, req.res.Err
}

func (a *Accepter) loop() {
	defer a.wg.Done()
	for {
		select {
		case <-a.stop:
			for {
				select {
				case r := <-a.reqs:
					a.run([]*startReq{r})
				default:
					return
				}
			}
		case r := <-a.reqs:
			batch := []*startReq{r}
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

func (a *Accepter) run(batch []*startReq) {
	rs := make([]ledgerstore.BridgeRequest, len(batch))
	for i, b := range batch {
		rs[i] = b.r
	}
	res := a.Store.BridgeStartMany(context.WithoutCancel(batch[0].ctx), rs)
	for i, b := range batch {
		b.res = res[i]
		close(b.done)
	}
}

// Close stops the loops after the queued requests are decided.
func (a *Accepter) Close() {
	a.init()
	close(a.stop)
	a.wg.Wait()
}
