package disputes

import "github.com/prometheus/client_golang/prometheus"

// Metrics count the dispute flow's outcomes.
type Metrics struct {
	Opened  prometheus.Counter     // disputes_opened_total
	Ruled   *prometheus.CounterVec // disputes_ruled_total{outcome}
	Slashed prometheus.Counter     // dispute_stake_slashes_total
}

// NewMetrics registers the dispute metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Opened: prometheus.NewCounter(prometheus.CounterOpts{Name: "disputes_opened_total", Help: "Disputes opened on this registry."}),
		Ruled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "disputes_ruled_total", Help: "Rulings recorded by the tribunal, by the party ruled for."},
			[]string{"outcome"}),
		Slashed: prometheus.NewCounter(prometheus.CounterOpts{Name: "dispute_stake_slashes_total", Help: "Stakes slashed because their owner lost a dispute (once per dispute)."}),
	}
	reg.MustRegister(m.Opened, m.Ruled, m.Slashed)
	return m
}
