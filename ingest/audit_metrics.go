package ingest

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Terms of supply_audit_units (the AuditReport's fields).
const (
	TermIssued           = "tokens_issued"
	TermDestroyed        = "tokens_destroyed"
	TermTransitNet       = "transit_net"
	TermNetSupply        = "net_supply"
	TermTotalCirculating = "total_circulating"
	TermDelta            = "delta"
)

// AuditCollector exports every term of a frame's supply audit, read from
// the maintained audit row at scrape time (one primary-key lookup), so a
// dashboard shows the terms that make up the delta, not only the delta.
// The samples are float64 (Prometheus's type): a supply past 2^53 units is
// shown rounded, while the delta is computed in int64 before it is
// exported, so a difference of one unit still shows as 1. Decisions never
// read these gauges.
type AuditCollector struct {
	pool     *pgxpool.Pool
	frame    string
	terms    *prometheus.Desc
	failures prometheus.Counter
}

// NewAuditCollector returns the collector for frame's audit in pool (the
// frame's EventStore database); register it once per frame.
func NewAuditCollector(pool *pgxpool.Pool, frame string) *AuditCollector {
	return &AuditCollector{
		pool: pool, frame: frame,
		terms: prometheus.NewDesc("supply_audit_units",
			"A term of the frame's supply audit in base units: net_supply = tokens_issued − tokens_destroyed + transit_net; delta = net_supply − total_circulating (must be 0).",
			[]string{"term"}, prometheus.Labels{"frame": frame}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "supply_audit_read_failures_total", Help: "Scrapes where the supply audit row could not be read.",
			ConstLabels: prometheus.Labels{"frame": frame},
		}),
	}
}

// Describe implements prometheus.Collector.
func (c *AuditCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.terms
	c.failures.Describe(ch)
}

// Collect implements prometheus.Collector. A failed read exports no term
// (never a zero that would look like a passing audit).
func (c *AuditCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rep, err := supplyAudit(ctx, c.pool, c.frame)
	if err != nil {
		c.failures.Inc()
	} else {
		for _, t := range []struct {
			term  string
			units int64
		}{
			{TermIssued, rep.TokensIssued}, {TermDestroyed, rep.TokensDestroyed}, {TermTransitNet, rep.TransitNet},
			{TermNetSupply, rep.NetSupply}, {TermTotalCirculating, rep.TotalCirculating}, {TermDelta, rep.Delta},
		} {
			ch <- prometheus.MustNewConstMetric(c.terms, prometheus.GaugeValue, float64(t.units), t.term)
		}
	}
	c.failures.Collect(ch)
}
