// Package fedgov runs the federation tier of governance across
// registries: a passed local proposal is elevated on its originating
// registry, announced to every federated registry over the mTLS peer
// channel (another registry of the frame through the cross-registry
// channel, another frame's mainframe through the bridge's, whose trust
// comes from the federated bundles), voted on by each registry's agents
// with their local power, and at the window's end tallied by the origin
// from each peer's local tally, signed with the peer registry's Ed25519
// key and verified against the key the peer answered the announcement
// with. Peers that do not answer by the collection deadline are tallied
// as missing and recorded so. The rules (signing text, aggregate) are in
// package governance; the storage in ledgerstore; the workflow in
// workflows (GovernanceFederationTally).
package fedgov

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// Ledger is the TEG as the federation tier uses it (*ledgerstore.Store).
type Ledger interface {
	Proposal(ctx context.Context, id uuid.UUID) (ledgerstore.Proposal, error)
	FederationOf(ctx context.Context, id uuid.UUID) (ledgerstore.Federation, error)
	Elevate(ctx context.Context, in ledgerstore.ElevateInput) (ledgerstore.Proposal, error)
	JoinFederation(ctx context.Context, in ledgerstore.JoinInput) (ledgerstore.Proposal, error)
	PinPeerKey(ctx context.Context, id uuid.UUID, peer string, key ed25519.PublicKey) error
	StorePeerTally(ctx context.Context, id uuid.UUID, peer string, st governance.SignedTally) error
	PeerLocalTally(ctx context.Context, id uuid.UUID, caller, self string, key ed25519.PrivateKey) (governance.SignedTally, error)
	TallyFederation(ctx context.Context, id uuid.UUID, self string, key ed25519.PrivateKey) (ledgerstore.Proposal, error)
	EnactProposal(ctx context.Context, id uuid.UUID) (ledgerstore.Proposal, error)
}

var _ Ledger = (*ledgerstore.Store)(nil)

// Endpoint is how a federated registry is reached: an mTLS client that
// authenticates it and its listener's base URL.
type Endpoint struct {
	Registry string
	Via      string // ledgerstore.ViaFrame or ViaBridge
	HTTP     *http.Client
	BaseURL  string
}

// Peers lists the federated registries this registry reaches now (the
// node's peer directories); Resolve finds one by name. Both are consulted
// per call, so a peer removed by its operator is no longer reached.
type Peers interface {
	List() []Endpoint
	Resolve(registry string) (Endpoint, bool)
}

// Service is one registry's federation tier.
type Service struct {
	Ledger    Ledger
	Self      string // this registry
	Frame     string
	Key       ed25519.PrivateKey // signs this registry's local tallies
	Peers     Peers
	Temporal  client.Client
	TaskQueue string
	Limits    governance.Limits
	// Fault, when set (tests), may fail a call to a peer before it is made.
	Fault func(op, registry string) error
}

// KeyPath is where a registry's governance signing key lives under the
// node's data directory.
func KeyPath(dataDir, registry string) string {
	return filepath.Join(dataDir, "governance", registry+".key")
}

// LoadKey loads registry's governance signing key, creating it on first
// use.
func LoadKey(dataDir, registry string) (ed25519.PrivateKey, error) {
	return auth.LoadOrCreateKey(KeyPath(dataDir, registry))
}

var idNamespace = uuid.MustParse("0b6f5e3a-4c1d-4e58-8f0e-2d7a9c3b5e61")

// FederationProposalID is the ID of the federation proposal elevated from
// registry's local proposal: one per local proposal, the same on every
// registry taking part.
func FederationProposalID(registry string, local uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(idNamespace, []byte(registry+"\x00"+local.String()))
}

// Elevate elevates actor's passed local proposal to every federated
// registry reached now, with a voting window of window, and starts its
// tally workflow (which announces it to the peers). Errors: Invalid (the
// window); FailedPrecondition (not passed, or no peer); Forbidden (not
// the proposer); NotFound; Unavailable (recorded, but the workflow could
// not be started: retry).
func (s *Service) Elevate(ctx context.Context, actor string, local uuid.UUID, window time.Duration) (ledgerstore.Proposal, error) {
	if window < s.Limits.MinWindow || window > s.Limits.MaxWindow || window%time.Second != 0 {
		return ledgerstore.Proposal{}, apperr.New(apperr.Invalid, "window_seconds must be between %d and %d",
			int64(s.Limits.MinWindow/time.Second), int64(s.Limits.MaxWindow/time.Second))
	}
	var peers []ledgerstore.FederationPeer
	for _, e := range s.Peers.List() {
		if e.Registry == s.Self {
			continue
		}
		peers = append(peers, ledgerstore.FederationPeer{Registry: e.Registry, Via: e.Via})
	}
	p, err := s.Ledger.Elevate(ctx, ledgerstore.ElevateInput{
		ID: FederationProposalID(s.Self, local), LocalProposal: local, Actor: actor, Registry: s.Self, Frame: s.Frame,
		Window: window, CollectWindow: s.Limits.Collect(), VetoWindow: s.Limits.VetoWindow, Peers: peers,
	})
	if err != nil {
		return p, err
	}
	if err := s.StartTally(ctx, p.ID.String()); err != nil {
		return p, apperr.Wrap(err, apperr.Unavailable, "federation proposal %s is recorded but its tally could not be scheduled; retry", p.ID)
	}
	return p, nil
}

// StartTally starts federation proposal id's tally workflow unless one is
// running; its steps are once-per-proposal on the ledger.
func (s *Service) StartTally(ctx context.Context, id string) error {
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.GovernanceFederationTallyWorkflowID(s.Self, id),
		TaskQueue:                s.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.GovernanceFederationTallyName, workflows.GovernanceTallyInput{ProposalID: id})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// --- wire --------------------------------------------------------------------

// Paths on the mTLS listener.
const (
	AnnouncePath = "/internal/v1/governance/federation/proposals"
	tallySuffix  = "/tally"
)

// Announcement is a federation proposal as its origin announces it.
type Announcement struct {
	ProposalID     uuid.UUID          `json:"proposal_id"`
	OriginRegistry string             `json:"origin_registry"`
	OriginFrame    string             `json:"origin_frame"`
	Proposer       string             `json:"proposer"`
	Title          string             `json:"title"`
	Body           string             `json:"body"`
	WindowSeconds  int64              `json:"window_seconds"`
	QuorumBps      int64              `json:"quorum_bps"`
	ThresholdBps   int64              `json:"threshold_bps"`
	Change         *governance.Change `json:"change,omitempty"`
	ClosesAt       time.Time          `json:"closes_at"`
}

// Joined is a peer's answer to an announcement: its tally key, and its
// snapshot.
type Joined struct {
	Registry   string `json:"registry"`
	PublicKey  []byte `json:"public_key"`
	Electorate int64  `json:"electorate"`
	Voters     int    `json:"voters"`
}

// TallyWire is a signed local tally on the wire.
type TallyWire struct {
	ProposalID string    `json:"proposal_id"`
	Registry   string    `json:"registry"`
	Electorate int64     `json:"electorate"`
	Yes        int64     `json:"yes"`
	No         int64     `json:"no"`
	Abstain    int64     `json:"abstain"`
	TalliedAt  time.Time `json:"tallied_at"`
	Signature  []byte    `json:"signature"`
}

func tallyWire(s governance.SignedTally) TallyWire {
	t := s.Tally
	return TallyWire{ProposalID: t.ProposalID, Registry: t.Registry, Electorate: t.Electorate, Yes: t.Yes, No: t.No, Abstain: t.Abstain, TalliedAt: t.TalliedAt, Signature: s.Signature}
}

func (w TallyWire) signed() governance.SignedTally {
	return governance.SignedTally{Tally: governance.LocalTally{
		ProposalID: w.ProposalID, Registry: w.Registry, Electorate: w.Electorate, Yes: w.Yes, No: w.No, Abstain: w.Abstain, TalliedAt: w.TalliedAt.UTC(),
	}, Signature: w.Signature}
}

// maxBody bounds every request and answer of the channel.
const maxBody = 64 << 10

func (s *Service) call(ctx context.Context, op, peer, path string, in, out any) error {
	if s.Fault != nil {
		if err := s.Fault(op, peer); err != nil {
			return apperr.Wrap(err, apperr.Unavailable, "%s %s", op, peer)
		}
	}
	e, ok := s.Peers.Resolve(peer)
	if !ok || e.HTTP == nil {
		return apperr.New(apperr.Unavailable, "registry %s is not reachable from %s now", peer, s.Self)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "%s %s", op, peer)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil || len(raw) > maxBody {
		return apperr.New(apperr.Unavailable, "%s %s: unreadable answer", op, peer)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Error struct {
				Code    apperr.Code `json:"code"`
				Message string      `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &eb)
		code := eb.Error.Code
		switch {
		case resp.StatusCode >= 500 || code == "":
			code = apperr.Unavailable
		case code != apperr.Invalid && code != apperr.NotFound && code != apperr.Forbidden && code != apperr.Conflict && code != apperr.FailedPrecondition:
			code = apperr.Invalid // a peer's code is not ours to trust beyond these
		}
		return apperr.New(code, "%s %s answered %d: %s", op, peer, resp.StatusCode, clip(eb.Error.Message))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return apperr.New(apperr.Invalid, "%s %s: malformed answer: %v", op, peer, err)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// Announce sends federation proposal id to peer and pins the key it
// answers with. Errors: Unavailable (retry); otherwise final.
func (s *Service) Announce(ctx context.Context, id uuid.UUID, peer string) error {
	p, err := s.Ledger.Proposal(ctx, id)
	if err != nil {
		return err
	}
	a := Announcement{
		ProposalID: id, OriginRegistry: s.Self, OriginFrame: s.Frame, Proposer: p.Proposer, Title: p.Title, Body: p.Body,
		WindowSeconds: int64(p.Window / time.Second), QuorumBps: p.QuorumBps, ThresholdBps: p.ThresholdBps, Change: p.Change, ClosesAt: p.ClosesAt,
	}
	var j Joined
	if err := s.call(ctx, "announce", peer, AnnouncePath, a, &j); err != nil {
		return err
	}
	if j.Registry != peer {
		return apperr.New(apperr.Invalid, "announce %s: answered as %q", peer, j.Registry)
	}
	return s.Ledger.PinPeerKey(ctx, id, peer, j.PublicKey)
}

// Collect asks peer for its signed local tally of federation proposal id
// and keeps it once verified. Errors: Unavailable or FailedPrecondition
// (the peer's window has not ended there): retry; otherwise final.
func (s *Service) Collect(ctx context.Context, id uuid.UUID, peer string) error {
	var w TallyWire
	if err := s.call(ctx, "tally", peer, AnnouncePath+"/"+url.PathEscape(id.String())+tallySuffix, struct{}{}, &w); err != nil {
		return err
	}
	return s.Ledger.StorePeerTally(ctx, id, peer, w.signed())
}

// --- the peer side -----------------------------------------------------------

// Join records an announcement from caller (the registry its mTLS
// identity names, already checked to be a federated peer).
func (s *Service) Join(ctx context.Context, caller string, a Announcement) (Joined, error) {
	if a.OriginRegistry != caller {
		return Joined{}, apperr.New(apperr.Forbidden, "%s announced a proposal of %q: a registry announces its own", caller, a.OriginRegistry)
	}
	if a.WindowSeconds <= 0 || a.WindowSeconds > int64(365*24*time.Hour/time.Second) {
		return Joined{}, apperr.New(apperr.Invalid, "window_seconds out of range")
	}
	p, err := s.Ledger.JoinFederation(ctx, ledgerstore.JoinInput{
		ID: a.ProposalID, OriginRegistry: a.OriginRegistry, OriginFrame: a.OriginFrame, Proposer: a.Proposer, ClosesAt: a.ClosesAt,
		Draft: governance.Draft{Title: a.Title, Body: a.Body, Window: time.Duration(a.WindowSeconds) * time.Second,
			QuorumBps: a.QuorumBps, ThresholdBps: a.ThresholdBps, Change: a.Change},
	})
	if err != nil {
		return Joined{}, err
	}
	return Joined{Registry: s.Self, PublicKey: s.Key.Public().(ed25519.PublicKey), Electorate: p.Electorate, Voters: p.Voters}, nil
}

// LocalTally answers caller's request for this registry's signed tally of
// federation proposal id.
func (s *Service) LocalTally(ctx context.Context, caller string, id uuid.UUID) (TallyWire, error) {
	st, err := s.Ledger.PeerLocalTally(ctx, id, caller, s.Self, s.Key)
	if err != nil {
		return TallyWire{}, err
	}
	return tallyWire(st), nil
}

// ParseTallyPath extracts the proposal ID from a tally path's id segment.
func ParseTallyPath(seg string) (uuid.UUID, error) {
	id, err := uuid.Parse(seg)
	if err != nil || id.String() != seg || strings.ContainsAny(seg, "/") {
		return uuid.Nil, apperr.New(apperr.Invalid, "proposal id is not a canonical UUID")
	}
	return id, nil
}
