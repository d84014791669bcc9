package ingest

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theprotocol-dev/theprotocol/events"
)

// SupplyWatch raises supply_invariant_violation{frame} (and logs an error)
// while the frame's audit is not clean: a non-zero delta, or a
// reconciliation or netting difference past its grace period, or a
// reconciler that stopped. It clears the gauge once the audit is clean.
// It checks after every money event (Reactor) and after every
// reconciliation pass (Check), since a difference can outlast its grace
// period while no money moves.
type SupplyWatch struct {
	pool      *pgxpool.Pool
	frame     string
	violation prometheus.Gauge
	log       *slog.Logger
	mu        sync.Mutex
	lastEvent time.Time // the last check prompted by an event
}

// reactorCheckEvery spaces the checks money events prompt: the audit reads
// the reconciliation's tables too, and a busy frame emits thousands of
// money events a second. What a skipped check would have seen, the next
// event's check or the next reconciliation pass sees.
const reactorCheckEvery = 250 * time.Millisecond

// NewSupplyWatch registers the gauge in reg (nil: not registered).
func NewSupplyWatch(pool *pgxpool.Pool, frame string, reg prometheus.Registerer, log *slog.Logger) *SupplyWatch {
	violation := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "supply_invariant_violation", Help: "1 while the frame's supply audit fails (non-zero delta, or reconciliation or netting differences past their grace period).",
		ConstLabels: prometheus.Labels{"frame": frame},
	})
	if reg != nil {
		reg.MustRegister(violation)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SupplyWatch{pool: pool, frame: frame, violation: violation, log: log}
}

// Check reads the audit and sets the gauge; after names what prompted it
// (for the log).
func (w *SupplyWatch) Check(ctx context.Context, after string) error {
	rep, err := Audit(ctx, w.pool, w.frame)
	if err != nil {
		return err
	}
	if !rep.OK {
		w.violation.Set(1)
		w.log.Error("SUPPLY INVARIANT VIOLATED", "frame", w.frame, "delta", rep.Delta, "net_supply", rep.NetSupply,
			"total_circulating", rep.TotalCirculating, "failures", rep.Failures, "after", after)
		return nil
	}
	w.violation.Set(0)
	return nil
}

// Reactor checks after each money event.
func (w *SupplyWatch) Reactor() Reactor {
	return Reactor{
		Name: "supply-invariant",
		Types: []string{events.TypeTokensIssued, events.TypeTokensBurned, events.TypeTokensTransferred,
			events.TypeTreasuryGrant, events.TypeHoldPosted, events.TypeReputationBondForfeited,
			events.TypeDisputeCompensationMinted},
		Handle: func(ctx context.Context, env events.Envelope) error {
			w.mu.Lock()
			due := time.Since(w.lastEvent) >= reactorCheckEvery
			if due {
				w.lastEvent = time.Now()
			}
			w.mu.Unlock()
			if !due {
				return nil
			}
			return w.Check(ctx, env.IdempotencyKey)
		},
	}
}

// AfterPass is a Reconciler's AfterPass hook: check, logging a failed read.
func (w *SupplyWatch) AfterPass(ctx context.Context) {
	if err := w.Check(ctx, "reconciliation pass"); err != nil {
		w.log.Warn("supply audit after reconciliation", "err", err)
	}
}
