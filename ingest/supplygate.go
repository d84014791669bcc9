package ingest

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/recon"
)

// SupplyGate feeds the frame's supply audit, reconciliation included, to
// the mainframe TEG's mint gate (ledgerstore.SupplyGate) when the same
// process hosts the EventStore: minting is refused unless the audit is
// clean (SPEC §4). Pool is the EventStore's.
type SupplyGate struct {
	Pool  *pgxpool.Pool
	Frame string
}

// SupplyVerdict reads the audit.
func (g SupplyGate) SupplyVerdict(ctx context.Context) (recon.Verdict, error) {
	rep, err := Audit(ctx, g.Pool, g.Frame)
	if err != nil {
		return recon.Verdict{}, err
	}
	return rep.Verdict(), nil
}
