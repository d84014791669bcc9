package bridge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/identity"
)

const maxBodyBytes = 1 << 20 // a batch of MaxBridgeBatch operations fits

// ApplyRequest asks the peer to apply one operation.
type ApplyRequest struct {
	ID          uuid.UUID `json:"id"`
	Kind        string    `json:"kind"` // mint or release
	Recipient   string    `json:"recipient"`
	AmountUnits int64     `json:"amount_units"`
	// Currency is the origin frame's currency (a mint's) or the releasing
	// frame's own (a release's): checked against the configuration.
	Currency  string    `json:"currency"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ApplyAnswer is the participant's answer.
type ApplyAnswer struct {
	ID       uuid.UUID `json:"id"`
	Status   string    `json:"status"` // applied, rejected or fenced
	Reason   string    `json:"reason,omitempty"`
	FeeUnits int64     `json:"fee_units,omitempty"`
}

// StatusRequest asks whether an operation was applied.
type StatusRequest struct {
	ID   uuid.UUID `json:"id"`
	Kind string    `json:"kind"`
}

// PositionRequest asks for this side of the bridge with the caller's frame.
type PositionRequest struct {
	// Sends are the caller's pending sends: which did this TEG mint?
	Sends []uuid.UUID `json:"sends"`
}

// PositionAnswer is this side of the bridge with the caller's frame.
type PositionAnswer struct {
	// WrappedUnits: the caller's wrapped tokens outstanding here.
	WrappedUnits int64 `json:"wrapped_units"`
	// Minted: which of the asked sends were minted here.
	Minted []uuid.UUID `json:"minted"`
	// Redemptions: this TEG's pending redemptions to the caller's frame.
	Redemptions []PendingOp `json:"redemptions"`
}

// PendingOp is one operation in flight.
type PendingOp struct {
	ID          uuid.UUID `json:"id"`
	AmountUnits int64     `json:"amount_units"`
}

// ParticipantStore is what the participant needs (*ledgerstore.Store).
type ParticipantStore interface {
	BridgeApply(ctx context.Context, in ledgerstore.BridgeInbound) (ledgerstore.BridgeInboundResult, error)
	BridgeApplyBatch(ctx context.Context, ins []ledgerstore.BridgeInbound) ([]ledgerstore.BridgeInboundResult, error)
	BridgeInboundStatus(ctx context.Context, peerFrame, kind string, id uuid.UUID) (string, error)
	BridgePosition(ctx context.Context, peerFrame string) (ledgerstore.BridgePosition, error)
	BridgeInboundApplied(ctx context.Context, peerFrame, kind string, ids []uuid.UUID) (map[uuid.UUID]bool, error)
}

// Participant serves the bridge participant API.
type Participant struct {
	Store       ParticipantStore
	TrustDomain spiffeid.TrustDomain
	Peers       *Directory
	// Currency is this frame's.
	Currency string
	// Accounts answers whether a receiver lives here (nil: never).
	Accounts AccountStore
	Metrics  *Metrics
	// Fault, when set (tests), is called before (after=false) and after
	// (after=true) the store applied a call: an error then answers 503,
	// the second one losing an applied call's reply.
	Fault func(op string, after bool) error
}

// Register mounts the routes on mux.
func (p *Participant) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+PathApply, p.serve("apply", p.apply))
	mux.HandleFunc("POST "+PathApplyBatch, p.serve("apply", p.applyBatch))
	mux.HandleFunc("POST "+PathStatus, p.serve("status", p.status))
	mux.HandleFunc("POST "+PathPosition, p.serve("position", p.position))
	mux.HandleFunc("POST "+PathAccount, p.serve("account", p.account))
}

func (p *Participant) serve(op string, h func(*http.Request, Peer) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller, err := identity.PeerID(r.TLS)
		if err != nil {
			writeErr(w, apperr.New(apperr.Unauthenticated, "no verified client SVID"))
			return
		}
		frame, refusal := AdmitCaller(p.TrustDomain, caller, p.Peers)
		if refusal != "" {
			p.Metrics.refused(refusal)
			if refusal == RefusedUnknownFrame {
				// The listener admitted the caller, so its trust domain
				// is pinned: a federated frame this node has not
				// connected (yet). Not definitive: the caller retries
				// rather than refunding what it might still deliver.
				writeErr(w, apperr.New(apperr.Unavailable, "%s yet; retry", refusalMessage(caller, refusal)))
				return
			}
			writeErr(w, apperr.New(apperr.PeerNotAdmitted, "%s", refusalMessage(caller, refusal)))
			return
		}
		peer, _ := p.Peers.Get(frame)
		if p.Fault != nil {
			if err := p.Fault(op, false); err != nil {
				writeErr(w, apperr.Wrap(err, apperr.Unavailable, "injected fault: %v", err))
				return
			}
		}
		out, err := h(r, peer)
		if err != nil {
			writeErr(w, err)
			return
		}
		if p.Fault != nil {
			if err := p.Fault(op, true); err != nil {
				// The call was applied; its answer is lost.
				writeErr(w, apperr.Wrap(err, apperr.Unavailable, "injected fault: %v", err))
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

// checkApply refuses a request whose currency is not the one its kind
// moves: a mint is of the caller's currency (it becomes wrapped:<caller>),
// a release pays out this frame's own. Neither ever creates this frame's
// native currency.
func (p *Participant) checkApply(req ApplyRequest, peer Peer) error {
	if req.ID == uuid.Nil {
		return apperr.New(apperr.Invalid, "id is required")
	}
	switch req.Kind {
	case ledgerstore.BridgeMint:
		if peer.Currency != "" && req.Currency != peer.Currency {
			return apperr.New(apperr.Invalid, "a mint from frame %s must be of its currency %s, not %q", peer.Frame, peer.Currency, clip(req.Currency))
		}
	case ledgerstore.BridgeRelease:
		if p.Currency != "" && req.Currency != p.Currency {
			return apperr.New(apperr.Invalid, "a release here is of %s, not %q", p.Currency, clip(req.Currency))
		}
	default:
		return apperr.New(apperr.Invalid, "kind must be mint or release")
	}
	return nil
}

// BatchRequest asks the peer to apply several operations.
type BatchRequest struct {
	Operations []ApplyRequest `json:"operations"`
}

// BatchAnswer answers each operation of a batch, in order.
type BatchAnswer struct {
	Results []ApplyAnswer `json:"results"`
}

func (p *Participant) applyBatch(r *http.Request, peer Peer) (any, error) {
	var req BatchRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.Operations) == 0 || len(req.Operations) > ledgerstore.MaxBridgeBatch {
		return nil, apperr.New(apperr.Invalid, "a batch holds 1..%d operations", ledgerstore.MaxBridgeBatch)
	}
	out := BatchAnswer{Results: make([]ApplyAnswer, len(req.Operations))}
	var ins []ledgerstore.BridgeInbound
	var at []int
	for i, op := range req.Operations {
		if err := p.checkApply(op, peer); err != nil {
			// Refused as a whole request would be: nothing recorded.
			out.Results[i] = ApplyAnswer{ID: op.ID, Status: "invalid", Reason: apperr.MessageOf(err)}
			continue
		}
		ins = append(ins, ledgerstore.BridgeInbound{ID: op.ID, Kind: op.Kind, PeerFrame: peer.Frame, Recipient: op.Recipient,
			AmountUnits: op.AmountUnits, ExpiresAt: op.ExpiresAt})
		at = append(at, i)
	}
	if len(ins) > 0 {
		res, err := p.Store.BridgeApplyBatch(r.Context(), ins)
		if err != nil {
			return nil, err
		}
		for j, rr := range res {
			p.Metrics.applied(ins[j].Kind, rr.Status)
			out.Results[at[j]] = ApplyAnswer{ID: ins[j].ID, Status: rr.Status, Reason: rr.Reason, FeeUnits: rr.FeeUnits}
		}
	}
	return out, nil
}

func (p *Participant) apply(r *http.Request, peer Peer) (any, error) {
	var req ApplyRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := p.checkApply(req, peer); err != nil {
		return nil, err
	}
	res, err := p.Store.BridgeApply(r.Context(), ledgerstore.BridgeInbound{
		ID: req.ID, Kind: req.Kind, PeerFrame: peer.Frame, Recipient: req.Recipient, AmountUnits: req.AmountUnits, ExpiresAt: req.ExpiresAt,
	})
	if err != nil {
		return nil, err
	}
	p.Metrics.applied(req.Kind, res.Status)
	return ApplyAnswer{ID: req.ID, Status: res.Status, Reason: res.Reason, FeeUnits: res.FeeUnits}, nil
}

func (p *Participant) status(r *http.Request, peer Peer) (any, error) {
	var req StatusRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.ID == uuid.Nil {
		return nil, apperr.New(apperr.Invalid, "id is required")
	}
	st, err := p.Store.BridgeInboundStatus(r.Context(), peer.Frame, req.Kind, req.ID)
	if err != nil {
		return nil, err
	}
	return ApplyAnswer{ID: req.ID, Status: st}, nil
}

func (p *Participant) position(r *http.Request, peer Peer) (any, error) {
	var req PositionRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.Sends) > 10000 {
		return nil, apperr.New(apperr.Invalid, "at most 10000 sends per question")
	}
	pos, err := p.Store.BridgePosition(r.Context(), peer.Frame)
	if err != nil {
		return nil, err
	}
	minted, err := p.Store.BridgeInboundApplied(r.Context(), peer.Frame, ledgerstore.BridgeMint, req.Sends)
	if err != nil {
		return nil, err
	}
	out := PositionAnswer{WrappedUnits: pos.WrappedUnits, Minted: []uuid.UUID{}, Redemptions: []PendingOp{}}
	for _, id := range req.Sends {
		if minted[id] {
			out.Minted = append(out.Minted, id)
		}
	}
	for _, op := range pos.Pending {
		if op.Kind == ledgerstore.BridgeRedeem {
			out.Redemptions = append(out.Redemptions, PendingOp{ID: op.ID, AmountUnits: op.AmountUnits})
		}
	}
	return out, nil
}

func writeErr(w http.ResponseWriter, err error) {
	code := apperr.CodeOf(err)
	status := map[apperr.Code]int{
		apperr.Invalid: 400, apperr.Unauthenticated: 401, apperr.Forbidden: 403, apperr.NotFound: 404,
		apperr.Conflict: 409, apperr.FailedPrecondition: 412, apperr.Unavailable: 503, apperr.PeerNotAdmitted: 403,
	}[code]
	if status == 0 {
		status = 500
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": string(code), "message": apperr.MessageOf(err)}})
}

func decode(r *http.Request, dst any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return apperr.Wrap(err, apperr.Invalid, "read body")
	}
	if len(body) > maxBodyBytes {
		return apperr.New(apperr.Invalid, "body larger than %d bytes", maxBodyBytes)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return apperr.New(apperr.Invalid, "malformed JSON: %v", err)
	}
	return nil
}

// Metrics are the bridge's counters and gauges.
type Metrics struct {
	refusedCalls *prometheus.CounterVec
	applies      *prometheus.CounterVec
	// Difference is the reconciliation difference per (origin, peer):
	// escrow − wrapped outstanding − in-flight sends + in-flight
	// redemptions, which must be 0.
	Difference *prometheus.GaugeVec
	Escrow     *prometheus.GaugeVec
	Wrapped    *prometheus.GaugeVec
	// Reachable is 1 when the last reconciliation could ask the peer.
	Reachable *prometheus.GaugeVec
}

// NewMetrics registers the bridge metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		refusedCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_participant_refused_total",
			Help: "Bridge participant calls refused by caller identity, by reason."}, []string{"reason"}),
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_participant_applies_total",
			Help: "Bridge operations peers asked this TEG to apply, by kind and answer."}, []string{"kind", "status"}),
		Difference: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bridge_reconciliation_difference_units",
			Help: "Escrow for the peer frame minus its wrapped tokens outstanding there, net of operations in flight (base units; must be 0)."}, []string{"origin", "peer"}),
		Escrow: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bridge_escrow_units",
			Help: "Native value locked for the peer frame (base units)."}, []string{"origin", "peer"}),
		Wrapped: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bridge_wrapped_outstanding_units",
			Help: "The origin frame's wrapped tokens outstanding on the peer frame (base units)."}, []string{"origin", "peer"}),
		Reachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bridge_reconciliation_peer_reachable",
			Help: "1 when the last bridge reconciliation could read the peer frame's side, else 0."}, []string{"origin", "peer"}),
	}
	reg.MustRegister(m.refusedCalls, m.applies, m.Difference, m.Escrow, m.Wrapped, m.Reachable)
	return m
}

func (m *Metrics) refused(reason string) {
	if m != nil {
		m.refusedCalls.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) applied(kind, status string) {
	if m != nil {
		m.applies.WithLabelValues(kind, status).Inc()
	}
}
