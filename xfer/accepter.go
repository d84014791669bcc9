package xfer

import (
	"context"
	"errors"
	"sync"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/batchq"
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
	q    *batchq.Queue[ledgerstore.XferRequest, ledgerstore.XferBegun]
}

func (a *Accepter) queue() *batchq.Queue[ledgerstore.XferRequest, ledgerstore.XferBegun] {
	a.once.Do(func() {
		if a.MaxBatch <= 0 || a.MaxBatch > ledgerstore.MaxXferBatch {
			a.MaxBatch = 500
		}
		if a.Workers <= 0 {
			a.Workers = 4
		}
		a.q = batchq.New(a.MaxBatch, a.Workers, func(ctx context.Context, reqs []ledgerstore.XferRequest) []ledgerstore.XferBegun {
			res, err := a.Store.BeginXfers(ctx, reqs)
			if err != nil {
				res = make([]ledgerstore.XferBegun, len(reqs))
				for i := range res {
					res[i] = ledgerstore.XferBegun{Err: err}
				}
			}
			return res
		})
	})
	return a.q
}

var _ payments.Accepter = (*Accepter)(nil)

// Begin accepts r (see ledgerstore.BeginXfer for its contract).
func (a *Accepter) Begin(ctx context.Context, r ledgerstore.XferRequest) (ledgerstore.Xfer, error) {
	res, err := a.queue().Do(ctx, r)
	switch {
	case errors.Is(err, batchq.ErrClosed):
		return ledgerstore.Xfer{}, apperr.New(apperr.Unavailable, "shutting down")
	case err != nil:
		return ledgerstore.Xfer{}, err
	}
	return res.Xfer, res.Err
}

// Close stops the loops after the queued requests are decided.
func (a *Accepter) Close() { a.queue().Close() }
