package identity

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Handshake failure reasons (label values of
// theprotocol_identity_handshake_failures_total{reason}).
const (
	ReasonNoCertificate      = "no_certificate"       // peer presented no certificate
	ReasonExpired            = "expired"              // peer SVID outside its validity window
	ReasonUnknownTrustDomain = "unknown_trust_domain" // no bundle for the peer's trust domain
	ReasonInvalid            = "invalid_svid"         // not a valid SVID or does not chain to the bundle
	ReasonUnauthorized       = "unauthorized"         // valid SVID, but the authorizer refused its ID
)

// Metrics are the identity fabric's Prometheus metrics. A nil *Metrics is
// valid everywhere and records nothing.
type Metrics struct {
	svidExpiry        *prometheus.GaugeVec
	rotations         *prometheus.CounterVec
	handshakeFailures *prometheus.CounterVec
	bundleRefreshes   *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered, still usable in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		svidExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "theprotocol_identity_svid_expiry_timestamp_seconds",
			Help: "NotAfter of the current X.509 SVID (unix seconds); alert on this minus time().",
		}, []string{"spiffe_id"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "theprotocol_identity_svid_rotations_total",
			Help: "X.509 SVIDs replaced by a fresh one.",
		}, []string{"spiffe_id"}),
		handshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "theprotocol_identity_handshake_failures_total",
			Help: "mTLS handshakes refused by peer verification, by side and reason.",
		}, []string{"side", "reason"}),
		bundleRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "theprotocol_identity_bundle_refreshes_total",
			Help: "Federated trust bundle fetches by peer trust domain and result.",
		}, []string{"trust_domain", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.svidExpiry, m.rotations, m.handshakeFailures, m.bundleRefreshes)
	}
	return m
}

func (m *Metrics) setExpiry(id string, unix float64) {
	if m != nil {
		m.svidExpiry.WithLabelValues(id).Set(unix)
	}
}

func (m *Metrics) rotated(id string) {
	if m != nil {
		m.rotations.WithLabelValues(id).Inc()
	}
}

func (m *Metrics) handshakeFailed(side, reason string) {
	if m != nil {
		m.handshakeFailures.WithLabelValues(side, reason).Inc()
	}
}

func (m *Metrics) bundleRefreshed(td, result string) {
	if m != nil {
		m.bundleRefreshes.WithLabelValues(td, result).Inc()
	}
}
