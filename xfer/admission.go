package xfer

import (
	"crypto/x509"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/identity"
)

// Who may call the participant API. The mTLS listener admits more than
// peer TEGs (every workload of the trust domain, federated peers of other
// trust domains), so the participant decides for itself: only the TEG of
// an active peer registry of the node's own trust domain moves money
// here. Another frame's registries are reached through a bridge, never
// directly, whatever the peer set says; and the registry a transfer comes
// from is the caller's, so a foreign trust domain reusing a local
// registry's name must not pass for it.

// Refusal reasons (label values of xfer_participant_refused_total{reason}).
const (
	RefusedForeignTrustDomain = "foreign_trust_domain" // a trust domain other than the node's
	RefusedNotTEG             = "not_teg"              // not spiffe://<td>/teg/<registry>
	RefusedNotPeer            = "not_peer"             // a TEG, but not an active peer
)

// AdmitCaller decides whether caller, whose SVID was verified, may use the
// participant API of a node of trust domain own, given the live peer set
// (allowed; nil allows no one). It returns the caller's registry, or the
// reason of the refusal. A zero own trust domain admits no one.
func AdmitCaller(own spiffeid.TrustDomain, caller spiffeid.ID, allowed PeerAllowed) (registry, refusal string) {
	if own.IsZero() || caller.TrustDomain() != own {
		return "", RefusedForeignTrustDomain
	}
	reg, ok := CallerRegistry(caller)
	if !ok {
		return "", RefusedNotTEG
	}
	if allowed == nil || !allowed(caller) {
		return "", RefusedNotPeer
	}
	return reg, ""
}

// refusalMessage explains a refusal to the caller.
func refusalMessage(own spiffeid.TrustDomain, caller spiffeid.ID, refusal string) string {
	switch refusal {
	case RefusedForeignTrustDomain:
		return fmt.Sprintf("%s is not admitted: only TEGs of trust domain %q may call the participant API (another frame goes through a bridge)", caller, own.Name())
	case RefusedNotTEG:
		return fmt.Sprintf("%s is not admitted: the participant API takes only TEG identities (spiffe://%s/teg/<registry>)", caller, own.Name())
	default:
		return fmt.Sprintf("%s is not admitted: not an active peer registry's TEG", caller)
	}
}

// AuthorizePeerTEG is the client-side check of the same rule: the
// participant this node calls must present the TEG identity of an active
// peer of its own trust domain.
func AuthorizePeerTEG(own spiffeid.TrustDomain, allowed PeerAllowed) identity.Authorizer {
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if _, refusal := AdmitCaller(own, id, allowed); refusal != "" {
			return fmt.Errorf("%q is not a peer TEG of %s (%s)", id, own.Name(), refusal)
		}
		return nil
	}
}

// Metrics are the participant's and the router's metrics. A nil *Metrics
// records nothing.
type Metrics struct {
	refused       *prometheus.CounterVec
	homeConflicts prometheus.Counter
	peerCalls     *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xfer_participant_refused_total",
			Help: "Participant API calls refused (403 peer_not_admitted) by reason: foreign_trust_domain, not_teg, not_peer.",
		}, []string{"reason"}),
		homeConflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xfer_home_conflicts_total",
			Help: "Home-registry lookups that found an account claimed by more than one registry (the payment is refused; an operator must resolve it).",
		}),
		peerCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xfer_peer_calls_total",
			Help: "Calls to peers' participant APIs by operation (prepare, commit, abort, decisions, accounts), peer and result: ok, refused (a definite answer no retry changes) or unavailable (retried).",
		}, []string{"op", "peer", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.refused, m.homeConflicts, m.peerCalls)
	}
	return m
}

// Results of xfer_peer_calls_total.
const (
	CallOK          = "ok"
	CallRefused     = "refused"
	CallUnavailable = "unavailable"
)

// peerCall counts one call; peer is a directory entry or "unknown", so
// the label set stays bounded by the frame's registries.
func (m *Metrics) peerCall(op, peer string, err error) {
	if m == nil {
		return
	}
	result := CallOK
	switch {
	case err == nil:
	case apperr.CodeOf(err) == apperr.Unavailable:
		result = CallUnavailable
	default:
		result = CallRefused
	}
	m.peerCalls.WithLabelValues(op, peer, result).Inc()
}

func (m *Metrics) refusedCall(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) homeConflict() {
	if m != nil {
		m.homeConflicts.Inc()
	}
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
