package bridge

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/money"
)

// PairReport is the bridge reconciliation of this frame's currency with
// one peer frame: the native value escrowed here for the peer against the
// wrapped tokens of this frame outstanding there.
//
//	difference = escrow − wrapped − in-flight sends + in-flight redemptions
//
// In-flight sends are locked here and not (yet) minted there; in-flight
// redemptions are burned there and not (yet) released here. The
// difference is 0 exactly whenever both sides are read at the same
// moment; two reads a transfer falls between can differ briefly, which is
// why the alert waits for a difference that persists.
type PairReport struct {
	Origin              string    `json:"origin_frame"`
	Peer                string    `json:"peer_frame"`
	EscrowUnits         int64     `json:"locked_bridge_units"`
	WrappedUnits        int64     `json:"wrapped_outstanding_units"`
	InFlightSends       int64     `json:"in_flight_send_units"`
	InFlightRedemptions int64     `json:"in_flight_redemption_units"`
	Difference          int64     `json:"difference_units"`
	PeerReachable       bool      `json:"peer_reachable"`
	Error               string    `json:"error,omitempty"`
	CheckedAt           time.Time `json:"checked_at"`
}

// Report is GET /api/v1/projections/bridge-reconciliation.
type Report struct {
	Frame string       `json:"frame"`
	Pairs []PairReport `json:"pairs"`
}

// Reconcile computes the report for every peer frame and updates the
// gauges.
func (s *Service) Reconcile(ctx context.Context) Report {
	out := Report{Frame: s.Frame, Pairs: []PairReport{}}
	for _, p := range s.Peers.List() {
		out.Pairs = append(out.Pairs, s.reconcilePair(ctx, p.Frame))
	}
	return out
}

func (s *Service) reconcilePair(ctx context.Context, peer string) PairReport {
	r := PairReport{Origin: s.Frame, Peer: peer, CheckedAt: time.Now().UTC()}
	local, err := s.Store.BridgePosition(ctx, peer)
	if err != nil {
		r.Error = "read local position: " + err.Error()
		return r
	}
	r.EscrowUnits = local.EscrowUnits
	var sends []uuid.UUID
	amounts := map[uuid.UUID]int64{}
	for _, op := range local.Pending {
		if op.Kind == ledgerstore.BridgeSend {
			sends = append(sends, op.ID)
			amounts[op.ID] = op.AmountUnits
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	remote, err := s.Client.Position(ctx, peer, sends)
	if s.Metrics != nil {
		s.Metrics.Reachable.WithLabelValues(s.Frame, peer).Set(map[bool]float64{true: 1, false: 0}[err == nil])
	}
	if err != nil {
		r.Error = "ask peer: " + err.Error()
		return r
	}
	r.PeerReachable = true
	r.WrappedUnits = remote.WrappedUnits
	minted := map[uuid.UUID]bool{}
	for _, id := range remote.Minted {
		minted[id] = true
	}
	var sum error
	add := func(dst *int64, v int64) {
		if n, err := money.Add(*dst, v); err != nil {
			sum = err
		} else {
			*dst = n
		}
	}
	for _, id := range sends {
		if !minted[id] {
			add(&r.InFlightSends, amounts[id])
		}
	}
	var redIDs []uuid.UUID
	redAmounts := map[uuid.UUID]int64{}
	for _, op := range remote.Redemptions {
		redIDs = append(redIDs, op.ID)
		redAmounts[op.ID] = op.AmountUnits
	}
	released, err := s.Store.BridgeInboundApplied(ctx, peer, ledgerstore.BridgeRelease, redIDs)
	if err != nil {
		r.Error = "read releases: " + err.Error()
		return r
	}
	for _, id := range redIDs {
		if !released[id] {
			add(&r.InFlightRedemptions, redAmounts[id])
		}
	}
	d := r.EscrowUnits
	add(&d, -r.WrappedUnits)
	add(&d, -r.InFlightSends)
	add(&d, r.InFlightRedemptions)
	if sum != nil {
		r.Error = "overflow: " + sum.Error()
		return r
	}
	r.Difference = d
	if s.Metrics != nil {
		s.Metrics.Difference.WithLabelValues(s.Frame, peer).Set(float64(d))
		s.Metrics.Escrow.WithLabelValues(s.Frame, peer).Set(float64(r.EscrowUnits))
		s.Metrics.Wrapped.WithLabelValues(s.Frame, peer).Set(float64(r.WrappedUnits))
	}
	return r
}

// RunReconciliation refreshes the gauges every interval until ctx ends.
func (s *Service) RunReconciliation(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Reconcile(ctx)
		}
	}
}
