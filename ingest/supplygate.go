package ingest

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// SupplyGate feeds the frame's supply audit to the mainframe TEG's mint
// gate (ledgerstore.SupplyGate): minting is refused while the audit's
// delta is not zero (SPEC §4). Pool is the EventStore's.
type SupplyGate struct {
	Pool  *pgxpool.Pool
	Frame string
}

// SupplyDelta is the audit's current delta.
func (g SupplyGate) SupplyDelta(ctx context.Context) (int64, error) {
	rep, err := Audit(ctx, g.Pool, g.Frame)
	return rep.Delta, err
}
