package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the EventStore's collectors, named after the path they
// measure (SPEC §5).
type Metrics struct {
	Ingested     *prometheus.CounterVec
	Duplicates   prometheus.Counter
	Quarantined  *prometheus.CounterVec
	BatchSize    prometheus.Histogram
	BatchSeconds prometheus.Histogram
	IngestLag    prometheus.Gauge
	AuditDelta   *prometheus.GaugeVec
	SourceGap    *prometheus.GaugeVec
	// KeyCollisions counts batches written twice because an event arrived
	// with a new sequence number but a key already in the log (see
	// insertEvents): a source reusing keys, which is a bug upstream.
	KeyCollisions prometheus.Counter
	// ProgressMerges counts source progress rows found written by another
	// Applier (a second member of the consumer group) and merged in.
	ProgressMerges prometheus.Counter
}

// NewMetrics registers the collectors in reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventstore_events_ingested_total", Help: "Events written to the event log (first arrival of each idempotency key).",
		}, []string{"source", "event_type"}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventstore_duplicates_dropped_total", Help: "Received events whose idempotency key was already in the log.",
		}),
		Quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventstore_quarantined_total", Help: "Events refused on ingest, by reason.",
		}, []string{"reason"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eventstore_kafka_batch_size", Help: "Records per ingest batch.",
			Buckets: []float64{1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000, 50000},
		}),
		BatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eventstore_batch_duration_seconds", Help: "Time to apply one batch (DB transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		IngestLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventstore_ingest_lag_seconds", Help: "Age of the newest event of the last batch when it was applied.",
		}),
		AuditDelta: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "supply_audit_delta", Help: "net_supply − total_circulating in base units; must be 0.",
		}, []string{"frame"}),
		SourceGap: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventstore_source_pending", Help: "Sequence numbers received beyond a source's high-water mark (a gap while > 0).",
		}, []string{"registry", "source"}),
		KeyCollisions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventstore_key_collisions_total", Help: "Batches rewritten because an event key arrived again under a new source sequence number.",
		}),
		ProgressMerges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventstore_progress_merges_total", Help: "Source progress rows another EventStore consumer had written since this one, merged before writing.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Ingested, m.Duplicates, m.Quarantined, m.BatchSize, m.BatchSeconds, m.IngestLag, m.AuditDelta, m.SourceGap, m.KeyCollisions, m.ProgressMerges)
	}
	return m
}
