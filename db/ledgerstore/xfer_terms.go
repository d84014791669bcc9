package ledgerstore

import (
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// The two registries of a cross-registry transfer must hold the same
// terms (sender, receiver, amount) before money moves. The coordinator
// refuses to commit a transfer whose target reported other terms
// (DecideXfers with a Mismatch: the transfer aborts, an event records
// both sides' terms); the participant refuses to credit a prepare whose
// terms differ from those the coordinator states at commit (CommitXfers).
// Both refusals are counted here.

// EventCrossRegistryTermsMismatch records, on the coordinator, a transfer
// aborted because its target prepared other terms (xfer-<id>-mismatch).
const EventCrossRegistryTermsMismatch = events.TypeCrossRegistryTermsMismatch

// Sides of xfer_terms_mismatch_total.
const (
	sideCoordinator = "coordinator"
	sideParticipant = "participant"
)

var xferTermsMismatches = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "xfer_terms_mismatch_total",
	Help: "Cross-registry transfers refused because the two registries held different terms: side=coordinator, aborted at the decision; side=participant, a commit refused.",
}, []string{"side"})

// XferCheckCollectors are the metrics of the terms checks, for the node's
// registry.
func XferCheckCollectors() []prometheus.Collector {
	return []prometheus.Collector{xferTermsMismatches}
}

// xferTermsPayload is CrossRegistryTermsMismatch's payload: the source's
// record and what the target reported (no postings: nothing moved).
type xferTermsPayload struct {
	TransferID     uuid.UUID        `json:"transfer_id"`
	SourceRegistry string           `json:"source_registry"`
	TargetRegistry string           `json:"target_registry"`
	Recorded       xferTermsView    `json:"recorded"`
	Reported       *xferTermsView   `json:"reported,omitempty"`
	Differences    string           `json:"differences"`
	Status         xferstate.Status `json:"status"` // the transfer's status after the decision
}

type xferTermsView struct {
	From        string `json:"from"`
	To          string `json:"to"`
	AmountUnits int64  `json:"amount_units"`
	Currency    string `json:"currency,omitempty"`
}

func xferMismatchEvent(x Xfer, reported *xferstate.Terms, diff, self string, now time.Time) (events.Envelope, error) {
	p := xferTermsPayload{
		TransferID: x.ID, SourceRegistry: self, TargetRegistry: x.Target, Differences: diff, Status: x.Status,
		Recorded: xferTermsView{From: x.From, To: x.To, AmountUnits: x.AmountUnits},
	}
	if reported != nil {
		p.Reported = &xferTermsView{From: reported.From, To: reported.To, AmountUnits: reported.AmountUnits, Currency: reported.Currency}
	}
	return newEvent(EventCrossRegistryTermsMismatch, "xfer-"+x.ID.String()+"-mismatch", x.From, now, nil, p)
}
