package activities

import "context"

// HoldExpirer is the ledger's expiry sweep (ledgerstore.Store implements it).
type HoldExpirer interface {
	ExpireHolds(ctx context.Context, limit int) (int, error)
}

// HoldSweeper voids holds past their expiry.
type HoldSweeper struct {
	Expirer HoldExpirer
}

// ExpireHolds expires up to limit holds and returns how many it expired.
// Idempotent: an expired hold is no longer active.
func (h *HoldSweeper) ExpireHolds(ctx context.Context, limit int) (int, error) {
	return h.Expirer.ExpireHolds(ctx, limit)
}
