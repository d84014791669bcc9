package bridge

import (
	"context"
	"errors"
	"sync"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/batchq"
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
	q    *batchq.Queue[ledgerstore.BridgeRequest, ledgerstore.BridgeStarted]
}

func (a *Accepter) queue() *batchq.Queue[ledgerstore.BridgeRequest, ledgerstore.BridgeStarted] {
	a.once.Do(func() {
		if a.MaxBatch <= 0 {
			a.MaxBatch = 256
		}
		if a.Workers <= 0 {
			a.Workers = 2
		}
		a.q = batchq.New(a.MaxBatch, a.Workers, a.Store.BridgeStartMany)
	})
	return a.q
}

// Start records r (see ledgerstore.BridgeStart).
func (a *Accepter) Start(ctx context.Context, r ledgerstore.BridgeRequest) (ledgerstore.BridgeTransfer, error) {
	res, err := a.queue().Do(ctx, r)
	switch {
	case errors.Is(err, batchq.ErrClosed):
		return ledgerstore.BridgeTransfer{}, apperr.New(apperr.Unavailable, "shutting down")
	case err != nil:
		return ledgerstore.BridgeTransfer{}, apperr.New(apperr.Unavailable, "the bridge is busy; retry with the same Idempotency-Key")
	}
	return res.Transfer, res.Err
}

// Close stops the loops after the queued requests are decided.
func (a *Accepter) Close() { a.queue().Close() }
