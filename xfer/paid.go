package xfer

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/identity"
)

// Paid agent calls across registries: a payee settles (or releases) a
// payment token at its own registry, which forwards it here, to the
// issuer, on the payee's behalf. The forwarding registry is the verified
// caller (its TEG SVID, admitted like every participant call); the issuer
// checks that the token names it as the payee's registry.

// Paths of the forwarded calls.
const (
	PathPaidSettle  = "/internal/v1/paid/settle"
	PathPaidRelease = "/internal/v1/paid/release"
)

// PaidRequest forwards a token: Payee is the agent the forwarding
// registry authenticated; AmountUnits is for settle only.
type PaidRequest struct {
	Token       string `json:"token"`
	Payee       string `json:"payee"`
	AmountUnits int64  `json:"amount_units,omitempty"`
}

// PaidAnswer is the issuer's answer: the settlement (TransferID, the
// cross-registry transfer carrying the amount) or the released hold.
type PaidAnswer struct {
	HoldID         uuid.UUID `json:"hold_id"`
	TransferID     uuid.UUID `json:"transfer_id,omitempty"`
	Payer          string    `json:"payer,omitempty"`
	Payee          string    `json:"payee,omitempty"`
	AmountUnits    int64     `json:"amount_units,omitempty"`
	FeeUnits       int64     `json:"fee_units,omitempty"`
	NetUnits       int64     `json:"net_units,omitempty"`
	Status         string    `json:"status"`
	TargetRegistry string    `json:"target_registry,omitempty"`
}

// PaidIssuer settles and releases this registry's tokens for payees of
// peer registries (the node adapts paidcalls.Service).
type PaidIssuer interface {
	SettleFromPeer(ctx context.Context, peer string, r PaidRequest) (PaidAnswer, error)
	ReleaseFromPeer(ctx context.Context, peer string, r PaidRequest) (PaidAnswer, error)
}

// RegisterPaid mounts the forwarded-token routes on mux, admitting
// callers as the participant API does.
func (p *Participant) RegisterPaid(mux *http.ServeMux, issuer PaidIssuer) {
	mux.HandleFunc("POST "+PathPaidSettle, p.servePaid(issuer.SettleFromPeer))
	mux.HandleFunc("POST "+PathPaidRelease, p.servePaid(issuer.ReleaseFromPeer))
}

func (p *Participant) servePaid(h func(context.Context, string, PaidRequest) (PaidAnswer, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller, err := identity.PeerID(r.TLS)
		if err != nil {
			writePaidErr(w, apperr.New(apperr.Unauthenticated, "no verified client SVID"))
			return
		}
		source, refusal := AdmitCaller(p.TrustDomain, caller, p.Allowed)
		if refusal != "" {
			p.Metrics.refusedCall(refusal)
			writePaidErr(w, apperr.New(apperr.PeerNotAdmitted, "%s", refusalMessage(p.TrustDomain, caller, refusal)))
			return
		}
		var req PaidRequest
		if err := decode(r, &req); err != nil {
			writePaidErr(w, err)
			return
		}
		if req.Token == "" || req.Payee == "" {
			writePaidErr(w, apperr.New(apperr.Invalid, "token and payee are required"))
			return
		}
		out, err := h(r.Context(), source, req)
		if err != nil {
			writePaidErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

// writePaidErr is writeErr with the refusals a token can meet: the
// forwarding registry hands them to the payee as they are.
func writePaidErr(w http.ResponseWriter, err error) {
	code := apperr.CodeOf(err)
	status := map[apperr.Code]int{
		apperr.Invalid: 400, apperr.Unauthenticated: 401, apperr.Forbidden: 403, apperr.NotFound: 404,
		apperr.Conflict: 409, apperr.FailedPrecondition: 422, apperr.InsufficientFunds: 422, apperr.Unavailable: 503,
		apperr.PeerNotAdmitted: 403,
	}[code]
	if status == 0 {
		status = 500
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": string(code), "message": apperr.MessageOf(err)}})
}

// PaidSettle forwards a settlement to the token's issuer.
func (c *Client) PaidSettle(ctx context.Context, issuer string, r PaidRequest) (PaidAnswer, error) {
	var out PaidAnswer
	err := c.call(ctx, "paid_settle", issuer, http.MethodPost, PathPaidSettle, r, &out)
	return out, err
}

// PaidRelease forwards a release to the token's issuer.
func (c *Client) PaidRelease(ctx context.Context, issuer string, r PaidRequest) (PaidAnswer, error) {
	var out PaidAnswer
	err := c.call(ctx, "paid_release", issuer, http.MethodPost, PathPaidRelease, r, &out)
	return out, err
}
