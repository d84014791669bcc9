package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ingest/internal/eventdb"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/recon"
)

// ReconMetrics are the reconciler's collectors.
type ReconMetrics struct {
	Passes      prometheus.Counter
	Failures    prometheus.Counter
	PassSeconds prometheus.Histogram
	Folded      prometheus.Counter
	// Delta is Σ|difference| over a registry's money terms against its
	// newest checkpoint (0 when it reconciles).
	Delta *prometheus.GaugeVec
	// Netting is a pair's transit − in flight.
	Netting *prometheus.GaugeVec
}

// NewReconMetrics registers the collectors in reg (nil: not registered).
func NewReconMetrics(reg prometheus.Registerer) *ReconMetrics {
	m := &ReconMetrics{
		Passes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconciliation_passes_total", Help: "Reconciliation passes completed.",
		}),
		Failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconciliation_pass_failures_total", Help: "Reconciliation passes that failed (retried at the next interval).",
		}),
		PassSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reconciliation_pass_duration_seconds", Help: "Time of one reconciliation pass.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		Folded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconciliation_folded_events_total", Help: "TEG events folded into the per-registry reconciliation projection.",
		}),
		Delta: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciliation_delta_units", Help: "Sum of the absolute differences, in base units, between the EventStore and a registry's newest balance checkpoint.",
		}, []string{"frame", "registry"}),
		Netting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "transit_netting_delta_units", Help: "Transit balances of a pair of registries minus the transfers in flight between them, in base units.",
		}, []string{"frame", "registry_a", "registry_b"}),
	}
	if reg != nil {
		reg.MustRegister(m.Passes, m.Failures, m.PassSeconds, m.Folded, m.Delta, m.Netting)
	}
	return m
}

func (r *Reconciler) publishGauges(ctx context.Context) error {
	rep, err := Reconciliation(ctx, r.pool, r.Frame)
	if err != nil {
		return err
	}
	for _, reg := range rep.Registries {
		r.o.Metrics.Delta.WithLabelValues(r.Frame, reg.Registry).Set(float64(reg.DeltaUnits))
	}
	for _, p := range rep.Netting {
		r.o.Metrics.Netting.WithLabelValues(r.Frame, p.A, p.B).Set(float64(p.Delta))
	}
	return nil
}

// ReconciliationReport is GET /api/v1/projections/reconciliation.
type ReconciliationReport struct {
	Frame string `json:"frame"`
	// PassedAt is when the reconciler last completed a pass (nil: never).
	PassedAt   *time.Time               `json:"passed_at"`
	Registries []RegistryReconciliation `json:"registries"`
	Netting    []PairNettingReport      `json:"netting"`
	// Failures are the differences the supply audit fails on.
	Failures []string `json:"failures"`
}

// RegistryReconciliation is one registry's newest checkpoint compared.
type RegistryReconciliation struct {
	Registry          string           `json:"registry"`
	FoldedSeq         int64            `json:"folded_seq"`
	CheckpointSeq     *int64           `json:"checkpoint_seq"`
	CoversSeq         *int64           `json:"covers_seq"`
	CheckpointTakenAt *time.Time       `json:"checkpoint_taken_at"`
	EvaluatedAt       *time.Time       `json:"evaluated_at"`
	Checkpoint        *recon.Summary   `json:"checkpoint,omitempty"`
	Projected         *recon.Summary   `json:"projected,omitempty"`
	Differences       []TermDifference `json:"differences"`
	// DeltaUnits is Σ|delta| over the money terms of the log or of the
	// projection, whichever is larger (the gauge).
	DeltaUnits int64 `json:"delta_units"`
	// MissingSeqs counts sequence numbers the fold went past without
	// their event; MissingSample lists the first of them.
	MissingSeqs   int64   `json:"missing_seqs"`
	MissingSample []int64 `json:"missing_sample,omitempty"`
}

// TermDifference is a difference with its history.
type TermDifference struct {
	recon.Difference
	Since   time.Time `json:"since"`
	Failing bool      `json:"failing"`
}

// PairNettingReport is one pair's transit netting.
type PairNettingReport struct {
	recon.PairNetting
	Since       *time.Time `json:"since"`
	Failing     bool       `json:"failing"`
	EvaluatedAt time.Time  `json:"evaluated_at"`
}

// maxMissingSample bounds the missing numbers listed per registry.
const maxMissingSample = 20

// Reconciliation reads the reconciler's results.
func Reconciliation(ctx context.Context, q eventdb.DBTX, frame string) (ReconciliationReport, error) {
	qq := eventdb.New()
	rep := ReconciliationReport{Frame: frame, Registries: []RegistryReconciliation{}, Netting: []PairNettingReport{}, Failures: []string{}}
	scan, err := qq.ReconScanGet(ctx, q)
	if err != nil && !db.IsNotFound(err) {
		return rep, err
	}
	if err == nil {
		t := scan.PassedAt.UTC()
		rep.PassedAt = &t
	}
	srcs, err := qq.ReconSourcesList(ctx, q)
	if err != nil {
		return rep, err
	}
	diffs, err := qq.ReconDifferencesList(ctx, q)
	if err != nil {
		return rep, err
	}
	byReg := map[string][]TermDifference{}
	for _, d := range diffs {
		byReg[d.Registry] = append(byReg[d.Registry], TermDifference{
			Difference: recon.Difference{Term: d.Term, Expected: d.ExpectedUnits, Projected: d.ProjectedUnits, Delta: d.DeltaUnits},
			Since:      d.Since.UTC(), Failing: d.Failing,
		})
	}
	for _, s := range srcs {
		rr := RegistryReconciliation{
			Registry: s.Registry, FoldedSeq: s.FoldedSeq, CheckpointSeq: s.CheckpointSeq, CoversSeq: s.CoversSeq,
			CheckpointTakenAt: utcPtr(s.CheckpointTakenAt), EvaluatedAt: utcPtr(s.EvaluatedAt), MissingSeqs: s.MissingCount,
			Differences: byReg[s.Registry],
		}
		if rr.Differences == nil {
			rr.Differences = []TermDifference{}
		}
		for _, raw := range []struct {
			b   []byte
			dst **recon.Summary
		}{{s.Expected, &rr.Checkpoint}, {s.Projected, &rr.Projected}} {
			if len(raw.b) > 0 {
				var sum recon.Summary
				if err := json.Unmarshal(raw.b, &sum); err != nil {
					return rep, fmt.Errorf("stored summary of %s: %w", s.Registry, err)
				}
				*raw.dst = &sum
			}
		}
		// The log's terms and the projection's usually say the same thing
		// twice (an event neither has): the gauge takes the larger.
		var logDs, projDs []recon.Difference
		for _, d := range rr.Differences {
			if strings.HasPrefix(d.Term, ProjectionTermPrefix) {
				projDs = append(projDs, d.Difference)
			} else {
				logDs = append(logDs, d.Difference)
			}
		}
		logSum, err := recon.MoneyDelta(logDs)
		if err != nil {
			return rep, err
		}
		projSum, err := recon.MoneyDelta(projDs)
		if err != nil {
			return rep, err
		}
		rr.DeltaUnits = max(logSum, projSum)
		if s.MissingCount > 0 {
			if rr.MissingSample, err = qq.ReconMissingList(ctx, q, eventdb.ReconMissingListParams{Registry: s.Registry, MaxRows: maxMissingSample}); err != nil {
				return rep, err
			}
		}
		for _, d := range rr.Differences {
			if d.Failing {
				rep.Failures = append(rep.Failures, describeDifference(rr, d))
			}
		}
		rep.Registries = append(rep.Registries, rr)
	}
	nets, err := qq.NettingList(ctx, q)
	if err != nil {
		return rep, err
	}
	for _, n := range nets {
		p := PairNettingReport{
			PairNetting: recon.PairNetting{A: n.RegistryA, B: n.RegistryB, TransitUnits: n.TransitUnits, InFlightUnits: n.InFlightUnits, Delta: n.DeltaUnits},
			Since:       utcPtr(n.Since), Failing: n.Failing, EvaluatedAt: n.EvaluatedAt.UTC(),
		}
		if p.Failing {
			rep.Failures = append(rep.Failures, fmt.Sprintf("registries %s and %s: transit nets to %s while %s is in flight between them (delta %s, since %s)",
				p.A, p.B, money.Format(p.TransitUnits), money.Format(p.InFlightUnits), money.Format(p.Delta), p.Since.Format(time.RFC3339)))
		}
		rep.Netting = append(rep.Netting, p)
	}
	return rep, nil
}

func describeDifference(r RegistryReconciliation, d TermDifference) string {
	at := ""
	if r.CheckpointSeq != nil {
		at = fmt.Sprintf(" (checkpoint at seq %d covering %d)", *r.CheckpointSeq, *r.CoversSeq)
	}
	switch {
	case d.Term == TermCheckpointOverdue:
		last := "never"
		if r.CheckpointTakenAt != nil {
			last = r.CheckpointTakenAt.Format(time.RFC3339)
		}
		return fmt.Sprintf("registry %s: no balance checkpoint since %s; its balances are not being reconciled", r.Registry, last)
	case d.IsMoney():
		return fmt.Sprintf("registry %s: %s differs by %s%s: the registry states %s, the EventStore has %s (since %s)",
			r.Registry, d.Term, money.Format(d.Delta), at, money.Format(d.Expected), money.Format(d.Projected), d.Since.Format(time.RFC3339))
	case d.Term == recon.TermAccounts:
		return fmt.Sprintf("registry %s: %d non-zero balances in the EventStore, %d at the registry%s (since %s)",
			r.Registry, d.Projected, d.Expected, at, d.Since.Format(time.RFC3339))
	default:
		return fmt.Sprintf("registry %s: %s differs%s (since %s)", r.Registry, d.Term, at, d.Since.Format(time.RFC3339))
	}
}

// reconFailures are what the audit fails on besides its delta: the
// reconciliation's failures, and a reconciler that has not run lately
// (its silence must not read as a clean audit).
func reconFailures(ctx context.Context, q eventdb.DBTX, frame string, now time.Time) ([]string, error) {
	rep, err := Reconciliation(ctx, q, frame)
	if err != nil {
		return nil, fmt.Errorf("read reconciliation: %w", err)
	}
	out := rep.Failures
	if rep.PassedAt == nil {
		return append(out, "reconciliation has not run yet"), nil
	}
	scan, err := eventdb.New().ReconScanGet(ctx, q)
	if err != nil {
		return nil, err
	}
	stale := time.Duration(scan.StaleAfterSeconds * float64(time.Second))
	if now.Sub(*rep.PassedAt) > stale {
		out = append(out, fmt.Sprintf("reconciliation last ran at %s, more than %s ago", rep.PassedAt.Format(time.RFC3339), stale))
	}
	return out, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
