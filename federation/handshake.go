package federation

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/events"
)

// HandshakeStore is the peer table's handshake (*registrystore.Peers
// implements it).
type HandshakeStore interface {
	Handshake(ctx context.Context, s registrystore.PeerStep, emit func(ctx context.Context, tx pgx.Tx, before, after registrystore.PeerLicence) error) (before, after registrystore.PeerHandshake, err error)
	HandshakeState(ctx context.Context, spiffeID string) (registrystore.PeerHandshake, error)
}

// PeeringRequest is what a registry announces, over mTLS, to the registry
// its admin added: who it is comes from its SVID; the URLs say where to
// reach it and fetch its trust bundle.
type PeeringRequest struct {
	Registry  string `json:"registry"`
	BaseURL   string `json:"base_url"`
	BundleURL string `json:"bundle_url"`
	Reason    string `json:"reason"`
}

// PeeringAnswer is the announced registry's answer: its status for the
// caller (active when it accepted, pending until its admin does) and its
// bundle endpoint.
type PeeringAnswer struct {
	Status    string `json:"status"`
	BundleURL string `json:"bundle_url"`
}

// Handshake is the two-sided peering handshake (ADR 0033). Adding a peer
// records it pending on both sides: this side fetches the other's trust
// bundle from its bundle endpoint and announces itself over mTLS, the
// other side fetches ours and records us. A side accepts by its admin's
// decision (adding, or accepting a pending request) or by its auto-accept
// policy; the peer is active on a side once both sides accepted, and the
// side accepting last tells the other over mTLS. Every status change is a
// FederationPeerStatusChanged event with who and why. Suspension,
// reinstatement and revocation stay the Licences' (a handshake never
// re-activates a suspended or revoked peer).
type Handshake struct {
	Licences *Licences
	Store    HandshakeStore
	// SelfURL and SelfBundleURL are this registry's mTLS listener and
	// bundle endpoint.
	SelfURL       func() string
	SelfBundleURL func() string
	// Announce posts req to the registry id at baseURL over mTLS.
	Announce func(ctx context.Context, id spiffeid.ID, baseURL string, req PeeringRequest) (PeeringAnswer, error)
	// Accepted tells the registry id at baseURL that this side accepted.
	Accepted func(ctx context.Context, id spiffeid.ID, baseURL string) error
	// FetchBundle fetches id's trust bundle from its bundle endpoint
	// (https_spiffe, the endpoint authenticated as id) and returns it as
	// SPIFFE bundle JSON.
	FetchBundle func(ctx context.Context, id spiffeid.ID, bundleURL string) ([]byte, error)
	// AutoAccept accepts a peering request from another registry of the
	// frame at once, instead of leaving it pending for an admin.
	AutoAccept bool
}

// Initiate is the admin's add of a new (or pending) peer id at baseURL:
// announce, fetch its bundle, record. The peer is active at once when the
// other side already accepted (its auto-accept policy, or its admin added
// us first), else pending. Errors: Unavailable (the peer did not answer),
// FailedPrecondition (the peer refused: it suspended or revoked us).
func (h *Handshake) Initiate(ctx context.Context, id spiffeid.ID, registry, baseURL, by, reason string) (PeerView, error) {
	ans, err := h.Announce(ctx, id, baseURL, PeeringRequest{Registry: h.Licences.Self, BaseURL: h.SelfURL(), BundleURL: h.SelfBundleURL(), Reason: reason})
	if err != nil {
		if apperr.Is(err, apperr.FailedPrecondition) || apperr.Is(err, apperr.PeerNotAdmitted) {
			return PeerView{}, apperr.Wrap(err, apperr.FailedPrecondition, "%s refused the peering: %v", registry, err)
		}
		return PeerView{}, apperr.Wrap(err, apperr.Unavailable, "announcing to %s failed: %v", registry, err)
	}
	if ans.Status != registrystore.PeerActive && ans.Status != registrystore.PeerPending {
		return PeerView{}, apperr.New(apperr.Unavailable, "%s answered the peering with status %q", registry, clip(ans.Status))
	}
	rec, err := h.record(ctx, id, baseURL, ans.BundleURL)
	if err != nil {
		return PeerView{}, err
	}
	return h.step(ctx, registrystore.PeerStep{Record: rec, Here: true, There: ans.Status == registrystore.PeerActive, By: by, Reason: reason})
}

// Receive records a peering request from caller (its verified SVID):
// pending until this side accepts, active at once under the auto-accept
// policy or when this side had added the caller already. A peer suspended
// or revoked here is refused (FailedPrecondition).
func (h *Handshake) Receive(ctx context.Context, caller spiffeid.ID, req PeeringRequest) (PeeringAnswer, error) {
	reg, ok := strings.CutPrefix(caller.Path(), "/teg/")
	switch {
	case caller.TrustDomain() != h.Licences.TrustDomain || !ok || reg == "" || strings.Contains(reg, "/"):
		return PeeringAnswer{}, apperr.New(apperr.PeerNotAdmitted, "only another registry of this frame may ask to peer")
	case reg != req.Registry:
		return PeeringAnswer{}, apperr.New(apperr.Invalid, "the request names %q but the caller is %s", clip(req.Registry), caller)
	case reg == h.Licences.Self:
		return PeeringAnswer{}, apperr.New(apperr.Invalid, "a registry cannot peer with itself")
	}
	if err := validURL(req.BaseURL); err != nil {
		return PeeringAnswer{}, err
	}
	if err := validBundleURL(req.BundleURL); err != nil {
		return PeeringAnswer{}, err
	}
	if err := validReason(req.Reason); err != nil {
		return PeeringAnswer{}, err
	}
	rec, err := h.record(ctx, caller, strings.TrimRight(req.BaseURL, "/"), req.BundleURL)
	if err != nil {
		return PeeringAnswer{}, err
	}
	by, reason := "peer:"+reg, req.Reason
	if h.AutoAccept {
		by = "policy:auto-accept (asked by " + reg + ")"
	}
	v, err := h.step(ctx, registrystore.PeerStep{Record: rec, Here: h.AutoAccept, There: true, By: by, Reason: reason})
	if err != nil && !apperr.Is(err, apperr.Unavailable) {
		return PeeringAnswer{}, err
	}
	return PeeringAnswer{Status: v.Status, BundleURL: h.SelfBundleURL()}, nil
}

// Accept is this side's admin accepting registry's pending request; when
// it makes the peer active, the other side is told over mTLS. Errors:
// NotFound, FailedPrecondition (not a request awaiting this side),
// Unavailable (accepted and recorded, but the other side was not reached:
// its admin re-adding us completes it there).
func (h *Handshake) Accept(ctx context.Context, registry, by, reason string) (PeerView, error) {
	if err := validReason(reason); err != nil {
		return PeerView{}, err
	}
	id, err := spiffeid.FromSegments(h.Licences.TrustDomain, "teg", registry)
	if err != nil || registry == "" {
		return PeerView{}, apperr.New(apperr.Invalid, "%q is not a registry ID", clip(registry))
	}
	cur, err := h.Store.HandshakeState(ctx, id.String())
	if err != nil {
		return PeerView{}, err
	}
	if cur.Status != registrystore.PeerPending || cur.AcceptedHere {
		return PeerView{}, apperr.New(apperr.FailedPrecondition, "%s is %s and awaits no acceptance here", registry, cur.Status)
	}
	v, err := h.step(ctx, registrystore.PeerStep{Record: cur.PeerRecord, Here: true, By: by, Reason: reason})
	if err != nil || v.Status != registrystore.PeerActive {
		return v, err
	}
	if err := h.Accepted(ctx, id, cur.BaseURL); err != nil {
		return v, apperr.Wrap(err, apperr.Unavailable, "accepted here, but telling %s failed: %v", registry, err)
	}
	return v, nil
}

// ReceiveAccepted records that caller accepted the peering this side asked
// for. FailedPrecondition when this side asked nothing of it.
func (h *Handshake) ReceiveAccepted(ctx context.Context, caller spiffeid.ID) (PeerView, error) {
	reg, ok := strings.CutPrefix(caller.Path(), "/teg/")
	if caller.TrustDomain() != h.Licences.TrustDomain || !ok || reg == "" {
		return PeerView{}, apperr.New(apperr.PeerNotAdmitted, "only another registry of this frame may accept a peering")
	}
	cur, err := h.Store.HandshakeState(ctx, caller.String())
	if err != nil {
		return PeerView{}, err
	}
	if cur.Status == registrystore.PeerActive {
		return view(cur.PeerLicence), nil
	}
	if cur.Status != registrystore.PeerPending || !cur.AcceptedHere {
		return PeerView{}, apperr.New(apperr.FailedPrecondition, "no peering with %s awaits its acceptance here", reg)
	}
	return h.step(ctx, registrystore.PeerStep{Record: cur.PeerRecord, There: true, By: "peer:" + reg, Reason: "accepted by " + reg})
}

// record fetches id's trust bundle and builds its peer row.
func (h *Handshake) record(ctx context.Context, id spiffeid.ID, baseURL, bundleURL string) (registrystore.PeerRecord, error) {
	if err := validBundleURL(bundleURL); err != nil {
		return registrystore.PeerRecord{}, err
	}
	bundle, err := h.FetchBundle(ctx, id, bundleURL)
	if err != nil {
		return registrystore.PeerRecord{}, apperr.Wrap(err, apperr.Unavailable, "fetching the trust bundle of %s failed: %v", id, err)
	}
	eid := id.String()
	return registrystore.PeerRecord{SpiffeID: id.String(), TrustDomain: id.TrustDomain().Name(), BaseURL: baseURL,
		BundleEndpointURL: bundleURL, BundleEndpointProfile: "https_spiffe", BundleEndpointID: &eid, Bundle: bundle}, nil
}

// step applies s with its event and, when the peer became active, reloads
// this process's peer set (the others follow the notification).
func (h *Handshake) step(ctx context.Context, s registrystore.PeerStep) (PeerView, error) {
	l := h.Licences
	s.Now = l.now()
	_, after, err := h.Store.Handshake(ctx, s, func(ctx context.Context, tx pgx.Tx, before, after registrystore.PeerLicence) error {
		id, _ := spiffeid.FromString(after.SpiffeID)
		reg, _ := strings.CutPrefix(id.Path(), "/teg/")
		env, err := events.New(events.TypeFederationPeerStatusChanged,
			"peer-status-"+after.SpiffeID+"-"+strconv.FormatInt(after.Seq, 10), after.SpiffeID, after.UpdatedAt)
		if err != nil {
			return err
		}
		env.Payload, err = json.Marshal(events.PeerStatusChangedPayload{
			Peer: after.SpiffeID, Registry: reg, TrustDomain: after.TrustDomain, From: before.Status, To: after.Status, By: s.By, Reason: s.Reason,
		})
		if err != nil {
			return err
		}
		return l.Outbox.Write(ctx, tx, env)
	})
	if err != nil {
		return PeerView{}, err
	}
	v := view(after.PeerLicence)
	if after.Status == registrystore.PeerActive && l.Reload != nil {
		if err := l.Reload(ctx); err != nil {
			return v, apperr.Wrap(err, apperr.Unavailable, "recorded, but reloading the peer set failed: %v", err)
		}
	}
	return v, nil
}

func validBundleURL(raw string) error {
	if !strings.HasPrefix(raw, "https://") || len(raw) > 2048 || strings.ContainsAny(raw, " \n\r") {
		return apperr.New(apperr.Invalid, "bundle_url must be the https:// URL of the registry's bundle endpoint")
	}
	return nil
}

func (l *Licences) now() time.Time {
	if l.Now != nil {
		return l.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}
