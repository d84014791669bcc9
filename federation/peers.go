package federation

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/events"
)

// PeerStore is the registry's peer table. *registrystore.Peers
// implements it.
type PeerStore interface {
	Get(ctx context.Context, spiffeID string) (registrystore.PeerLicence, error)
	ListAll(ctx context.Context, afterSpiffeID string, maxRows int) ([]registrystore.PeerLicence, error)
	SetStatus(ctx context.Context, c registrystore.PeerChange,
		emit func(ctx context.Context, tx pgx.Tx, before, after registrystore.PeerLicence) error) (before, after registrystore.PeerLicence, err error)
}

// Licences manages this registry's peers: an operator adds a peer of the
// frame by its mTLS base URL, and suspends, reinstates or revokes its
// licence at run time. Every decision is recorded with who made it and
// why, as a FederationPeerStatusChanged event in the same transaction, and
// takes effect at once: on this process through Reload, on the
// registry's other processes through the notification the store sends
// with the change (see ADR 0028).
type Licences struct {
	Self        string               // this registry
	TrustDomain spiffeid.TrustDomain // the frame's: peers outside it are a bridge's business
	Store       PeerStore
	Outbox      *db.OutboxWriter
	// Probe calls the peer's mTLS listener at baseURL and returns the
	// SPIFFE ID its verified SVID carries.
	Probe func(ctx context.Context, baseURL string) (spiffeid.ID, error)
	// Connect records the peer (active) and adds it to this process's
	// peer set and route directory; a peer an operator suspended or
	// revoked is FailedPrecondition.
	Connect func(ctx context.Context, registry, baseURL string) error
	// Reload re-reads the peer set from the database on this process.
	Reload func(ctx context.Context) error
	Now    func() time.Time

	// Handshake, when set, adds a new, removed or pending peer through the
	// two-sided handshake (Handshake.Initiate) instead of licensing it
	// here alone.
	Handshake func(ctx context.Context, id spiffeid.ID, registry, baseURL, by, reason string) (PeerView, error)
}

// MaxPeerReasonBytes bounds a decision's reason.
const MaxPeerReasonBytes = 512

// PeerView is a peer as the API lists it.
type PeerView struct {
	Registry    string    `json:"registry"`
	SpiffeID    string    `json:"spiffe_id"`
	TrustDomain string    `json:"trust_domain"`
	BaseURL     string    `json:"base_url"`
	Status      string    `json:"status"`
	ChangedBy   string    `json:"changed_by,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Changes     int64     `json:"changes"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func view(l registrystore.PeerLicence) PeerView {
	reg := ""
	if id, err := spiffeid.FromString(l.SpiffeID); err == nil {
		reg, _ = strings.CutPrefix(id.Path(), "/teg/")
	}
	return PeerView{Registry: reg, SpiffeID: l.SpiffeID, TrustDomain: l.TrustDomain, BaseURL: l.BaseURL, Status: l.Status,
		ChangedBy: l.ChangedBy, Reason: l.ChangeReason, Changes: l.Seq, UpdatedAt: l.UpdatedAt}
}

// Add licenses the registry serving the mTLS listener at baseURL: its
// identity is the SVID it presents (verified against the frame's bundle),
// never what the caller claims. Re-adding an active peer records the
// decision again; a suspended peer must be reinstated, and a revoked one
// stays revoked (FailedPrecondition). Errors: Invalid (URL, reason),
// Unavailable (the peer did not answer), FailedPrecondition.
func (l *Licences) Add(ctx context.Context, baseURL, by, reason string) (PeerView, error) {
	if err := validURL(baseURL); err != nil {
		return PeerView{}, err
	}
	if err := validReason(reason); err != nil {
		return PeerView{}, err
	}
	baseURL = strings.TrimRight(baseURL, "/")
	id, err := l.Probe(ctx, baseURL)
	if err != nil {
		return PeerView{}, apperr.Wrap(err, apperr.Unavailable, "could not verify the registry at %s: %v", baseURL, err)
	}
	reg, ok := strings.CutPrefix(id.Path(), "/teg/")
	switch {
	case id.TrustDomain() != l.TrustDomain:
		return PeerView{}, apperr.New(apperr.Invalid, "%s is in trust domain %s, not this frame's %s: other frames are reached through a bridge",
			baseURL, id.TrustDomain().Name(), l.TrustDomain.Name())
	case !ok || reg == "" || strings.Contains(reg, "/"):
		return PeerView{}, apperr.New(apperr.Invalid, "%s presents %s, not a registry's TEG", baseURL, id)
	case reg == l.Self:
		return PeerView{}, apperr.New(apperr.Invalid, "%s is this registry itself", baseURL)
	}
	prev := ""
	if cur, err := l.Store.Get(ctx, id.String()); err == nil {
		prev = cur.Status
	} else if !apperr.Is(err, apperr.NotFound) {
		return PeerView{}, err
	}
	if l.Handshake != nil && (prev == "" || prev == registrystore.PeerPending || prev == registrystore.PeerRemoved) {
		return l.Handshake(ctx, id, reg, baseURL, by, reason)
	}
	if err := l.Connect(ctx, reg, baseURL); err != nil {
		return PeerView{}, err
	}
	return l.change(ctx, id, &prev, []string{registrystore.PeerActive}, registrystore.PeerActive, by, reason)
}

// Suspend stops admitting registry's calls until reinstated.
func (l *Licences) Suspend(ctx context.Context, registry, by, reason string) (PeerView, error) {
	return l.decide(ctx, registry, []string{registrystore.PeerActive, registrystore.PeerPending}, registrystore.PeerSuspended, by, reason)
}

// Reinstate re-admits a suspended peer.
func (l *Licences) Reinstate(ctx context.Context, registry, by, reason string) (PeerView, error) {
	return l.decide(ctx, registry, []string{registrystore.PeerSuspended}, registrystore.PeerActive, by, reason)
}

// Revoke ends registry's licence for good.
func (l *Licences) Revoke(ctx context.Context, registry, by, reason string) (PeerView, error) {
	return l.decide(ctx, registry, []string{registrystore.PeerActive, registrystore.PeerPending, registrystore.PeerSuspended},
		registrystore.PeerRevoked, by, reason)
}

func (l *Licences) decide(ctx context.Context, registry string, from []string, to, by, reason string) (PeerView, error) {
	if err := validReason(reason); err != nil {
		return PeerView{}, err
	}
	id, err := spiffeid.FromSegments(l.TrustDomain, "teg", registry)
	if err != nil || registry == "" {
		return PeerView{}, apperr.New(apperr.Invalid, "%q is not a registry ID", clip(registry))
	}
	return l.change(ctx, id, nil, from, to, by, reason)
}

// change applies a decision; added is the state before an add ("" for a
// new peer), nil for other decisions.
func (l *Licences) change(ctx context.Context, id spiffeid.ID, added *string, from []string, to, by, reason string) (PeerView, error) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	_, after, err := l.Store.SetStatus(ctx, registrystore.PeerChange{
		SpiffeID: id.String(), From: from, To: to, By: by, Reason: reason, Now: now().UTC().Truncate(time.Microsecond),
	}, func(ctx context.Context, tx pgx.Tx, before, after registrystore.PeerLicence) error {
		was := before.Status
		if added != nil {
			was = *added
		}
		reg, _ := strings.CutPrefix(id.Path(), "/teg/")
		env, err := events.New(events.TypeFederationPeerStatusChanged,
			"peer-status-"+id.String()+"-"+strconv.FormatInt(after.Seq, 10), id.String(), after.UpdatedAt)
		if err != nil {
			return err
		}
		env.Payload, err = json.Marshal(events.PeerStatusChangedPayload{
			Peer: id.String(), Registry: reg, TrustDomain: after.TrustDomain, From: was, To: after.Status, By: by, Reason: reason,
		})
		if err != nil {
			return err
		}
		return l.Outbox.Write(ctx, tx, env)
	})
	if err != nil {
		return PeerView{}, err
	}
	if l.Reload != nil {
		if err := l.Reload(ctx); err != nil {
			// The decision is committed; the other processes apply it
			// through the notification, and this one on its next reload.
			return view(after), apperr.Wrap(err, apperr.Unavailable, "recorded, but reloading the peer set failed: %v", err)
		}
	}
	return view(after), nil
}

// List returns every peer with its live status, up to max.
func (l *Licences) List(ctx context.Context, max int) ([]PeerView, error) {
	rows, err := l.Store.ListAll(ctx, "", max)
	if err != nil {
		return nil, err
	}
	out := make([]PeerView, len(rows))
	for i, r := range rows {
		out[i] = view(r)
	}
	return out, nil
}

func validURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || len(raw) > 2048 {
		return apperr.New(apperr.Invalid, "base_url must be the https://host:port of the peer's mTLS listener")
	}
	return nil
}

func validReason(reason string) error {
	if strings.TrimSpace(reason) == "" {
		return apperr.New(apperr.Invalid, "reason is required (it is recorded with the decision)")
	}
	if len(reason) > MaxPeerReasonBytes || !utf8.ValidString(reason) {
		return apperr.New(apperr.Invalid, "reason must be valid UTF-8 of at most %d bytes", MaxPeerReasonBytes)
	}
	return nil
}
