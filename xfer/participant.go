// Package xfer carries cross-registry transfers between TEGs (SPEC §6.1):
// the participant API each TEG serves on its mTLS listener, the client
// coordinators use to call it, home-registry routing of DIDs, and the
// batcher that groups transfers of one (source, target) pair into
// settlement workflows.
//
// The participant API (all under /internal/v1/xfer, JSON, idempotent by
// transfer ID) is authorised per request by the caller's SPIFFE ID: it must
// be an active peer registry's TEG of the node's own trust domain
// (spiffe://<td>/teg/<registry>, see AdmitCaller), and the registry in that ID
// is the source of every transfer in the call — the body cannot claim
// another.
package xfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// Limits.
const (
	MaxBodyBytes = 1 << 20 // a batch of MaxXferBatch prepares fits
	MaxBatch     = ledgerstore.MaxXferBatch
)

// Participant API paths.
const (
	PathPrepare   = "/internal/v1/xfer/prepare"
	PathCommit    = "/internal/v1/xfer/commit"
	PathAbort     = "/internal/v1/xfer/abort"
	PathDecisions = "/internal/v1/xfer/decisions"
	PathAccounts  = "/internal/v1/xfer/accounts/"
)

// Item is one transfer in a prepare or commit call: its terms as the
// coordinator recorded them (a commit's memo is not compared).
type Item struct {
	ID          uuid.UUID `json:"id"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	AmountUnits int64     `json:"amount_units"`
	Currency    string    `json:"currency,omitempty"`
	Memo        string    `json:"memo,omitempty"`
}

// PrepareRequest asks the participant to prepare transfers.
type PrepareRequest struct {
	Transfers []Item `json:"transfers"`
}

// IDsRequest names transfers (abort, decisions).
type IDsRequest struct {
	IDs []uuid.UUID `json:"ids"`
}

// CommitRequest names the transfers to credit with the terms the
// coordinator recorded for each: only a prepare holding the same terms is
// credited. (A bare list of IDs, as coordinators before this check sent,
// is refused.)
type CommitRequest struct {
	Transfers []Item `json:"transfers"`
}

// Result is the participant's answer for one transfer.
type Result struct {
	ID       uuid.UUID        `json:"id"`
	Status   xferstate.Status `json:"status"` // Prepared, Rejected, Committed, Aborted or Unknown
	Reason   string           `json:"reason,omitempty"`
	FeeUnits int64            `json:"fee_units,omitempty"`
	// The terms the participant recorded (prepare answers): what the
	// coordinator checks against its own record before deciding commit.
	From        string `json:"from,omitempty"`
	To          string `json:"to,omitempty"`
	AmountUnits int64  `json:"amount_units,omitempty"`
	Currency    string `json:"currency,omitempty"`
}

// Results is the body of prepare, commit and abort responses.
type Results struct {
	Results []Result `json:"results"`
}

// Decision is the coordinator's answer about one transfer: pending,
// committing/committed (commit decided), aborted (abort decided, whether
// or not the coordinator has released the sender's hold yet), or unknown
// (no record: presumed abort).
type Decision struct {
	ID     uuid.UUID        `json:"id"`
	Status xferstate.Status `json:"status"`
	// The coordinator's record of the transfer's terms (when it has one
	// for the asking participant): a sweeper credits a prepare only when
	// they equal its own.
	From        string `json:"from,omitempty"`
	To          string `json:"to,omitempty"`
	AmountUnits int64  `json:"amount_units,omitempty"`
	Currency    string `json:"currency,omitempty"`
}

// Decisions is the body of a decisions response.
type Decisions struct {
	Decisions []Decision `json:"decisions"`
}

// AccountAnswer says whether an account lives on the asked registry.
type AccountAnswer struct {
	Exists bool `json:"exists"`
}

// ParticipantStore is what the participant API needs from the TEG
// (*ledgerstore.Store).
type ParticipantStore interface {
	PrepareXfers(ctx context.Context, source string, items []ledgerstore.XferPrepareItem) ([]ledgerstore.XferPrepareResult, error)
	CommitXfers(ctx context.Context, source string, items []ledgerstore.XferPrepareItem) ([]ledgerstore.XferPrepareResult, error)
	AbortXfers(ctx context.Context, source string, ids []uuid.UUID) ([]ledgerstore.XferPrepareResult, error)
	XferStatuses(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]ledgerstore.Xfer, error)
	AccountExists(ctx context.Context, id string) (bool, error)
}

// PeerAllowed reports whether a SPIFFE ID is an active peer right now.
type PeerAllowed func(id spiffeid.ID) bool

// Participant serves the participant API.
type Participant struct {
	Store ParticipantStore
	// TrustDomain is the node's own: callers of any other are refused
	// (zero: every caller is).
	TrustDomain spiffeid.TrustDomain
	// Allowed is consulted per request (the live peer_registries set).
	Allowed PeerAllowed
	// Metrics counts refused callers (nil: not counted).
	Metrics *Metrics
	// Fault, when set (tests), may fail a call before it reaches the store:
	// op is "prepare", "commit", "abort", "decisions" or "accounts".
	Fault func(op string) error
	// Currency is this TEG's (the frame's). When set, a prepare or commit
	// stating another currency is refused, and answers state it.
	Currency string
}

// Register mounts the routes on mux.
func (p *Participant) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+PathPrepare, p.serve("prepare", p.prepare))
	mux.HandleFunc("POST "+PathCommit, p.serve("commit", p.commit))
	mux.HandleFunc("POST "+PathAbort, p.serve("abort", p.abort))
	mux.HandleFunc("POST "+PathDecisions, p.serve("decisions", p.decisions))
	mux.HandleFunc("GET "+PathAccounts+"{id}", p.serve("accounts", p.account))
}

// CallerRegistry returns the registry of a verified TEG SPIFFE ID
// (spiffe://<td>/teg/<registry>).
func CallerRegistry(id spiffeid.ID) (string, bool) {
	reg, ok := strings.CutPrefix(id.Path(), "/teg/")
	if !ok || reg == "" || strings.Contains(reg, "/") {
		return "", false
	}
	return reg, true
}

type handlerFunc func(r *http.Request, source string) (any, error)

func (p *Participant) serve(op string, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller, err := identity.PeerID(r.TLS)
		if err != nil {
			writeErr(w, apperr.New(apperr.Unauthenticated, "no verified client SVID"))
			return
		}
		source, refusal := AdmitCaller(p.TrustDomain, caller, p.Allowed)
		if refusal != "" {
			p.Metrics.refusedCall(refusal)
			writeErr(w, apperr.New(apperr.PeerNotAdmitted, "%s", refusalMessage(p.TrustDomain, caller, refusal)))
			return
		}
		if p.Fault != nil {
			if err := p.Fault(op); err != nil {
				writeErr(w, apperr.Wrap(err, apperr.Unavailable, "injected fault: %v", err))
				return
			}
		}
		out, err := h(r, source)
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

func writeErr(w http.ResponseWriter, err error) {
	code := apperr.CodeOf(err)
	status := map[apperr.Code]int{
		apperr.Invalid: 400, apperr.Unauthenticated: 401, apperr.Forbidden: 403, apperr.NotFound: 404,
		apperr.Conflict: 409, apperr.Unavailable: 503,
		apperr.PeerNotAdmitted: 403, apperr.ExposureCapExceeded: 422,
	}[code]
	if status == 0 {
		status = 500
	}
	msg := apperr.MessageOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": string(code), "message": msg}})
}

func decode(r *http.Request, dst any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return apperr.Wrap(err, apperr.Invalid, "read body")
	}
	if len(body) > MaxBodyBytes {
		return apperr.New(apperr.Invalid, "body larger than %d bytes", MaxBodyBytes)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return apperr.New(apperr.Invalid, "malformed JSON: %v", err)
	}
	return nil
}

func (p *Participant) results(rs []ledgerstore.XferPrepareResult) Results {
	out := Results{Results: make([]Result, len(rs))}
	for i, r := range rs {
		out.Results[i] = Result{ID: r.ID, Status: r.Status, Reason: r.Reason, FeeUnits: r.FeeUnits, From: r.From, To: r.To, AmountUnits: r.AmountUnits}
		if r.AmountUnits != 0 {
			out.Results[i].Currency = p.Currency
		}
	}
	return out
}

// terms validates the transfers of a prepare or commit call.
func (p *Participant) terms(ts []Item) ([]ledgerstore.XferPrepareItem, error) {
	if len(ts) == 0 || len(ts) > MaxBatch {
		return nil, apperr.New(apperr.Invalid, "1..%d transfers per call", MaxBatch)
	}
	items := make([]ledgerstore.XferPrepareItem, len(ts))
	for i, t := range ts {
		if t.ID == uuid.Nil || t.AmountUnits <= 0 {
			return nil, apperr.New(apperr.Invalid, "transfer %d: id and a positive amount_units are required", i)
		}
		if p.Currency != "" && t.Currency != p.Currency {
			return nil, apperr.New(apperr.Invalid, "transfer %d: currency %q is not this registry's %q", i, t.Currency, p.Currency)
		}
		items[i] = ledgerstore.XferPrepareItem{ID: t.ID, From: t.From, To: t.To, AmountUnits: t.AmountUnits, Memo: t.Memo}
	}
	return items, nil
}

func (p *Participant) prepare(r *http.Request, source string) (any, error) {
	var req PrepareRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	items, err := p.terms(req.Transfers)
	if err != nil {
		return nil, err
	}
	rs, err := p.Store.PrepareXfers(r.Context(), source, items)
	if err != nil {
		return nil, err
	}
	return p.results(rs), nil
}

func (p *Participant) ids(r *http.Request) ([]uuid.UUID, error) {
	var req IDsRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.IDs) == 0 || len(req.IDs) > MaxBatch {
		return nil, apperr.New(apperr.Invalid, "1..%d ids per call", MaxBatch)
	}
	return req.IDs, nil
}

func (p *Participant) commit(r *http.Request, source string) (any, error) {
	var req CommitRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	items, err := p.terms(req.Transfers)
	if err != nil {
		return nil, err
	}
	rs, err := p.Store.CommitXfers(r.Context(), source, items)
	if err != nil {
		return nil, err
	}
	return p.results(rs), nil
}

func (p *Participant) abort(r *http.Request, source string) (any, error) {
	ids, err := p.ids(r)
	if err != nil {
		return nil, err
	}
	rs, err := p.Store.AbortXfers(r.Context(), source, ids)
	if err != nil {
		return nil, err
	}
	return p.results(rs), nil
}

// decisions answers a participant's sweeper: the caller may only ask about
// transfers addressed to it.
func (p *Participant) decisions(r *http.Request, caller string) (any, error) {
	ids, err := p.ids(r)
	if err != nil {
		return nil, err
	}
	xs, err := p.Store.XferStatuses(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	out := Decisions{Decisions: make([]Decision, len(ids))}
	for i, id := range ids {
		x, ok := xs[id]
		d := Decision{ID: id, Status: xferstate.Unknown}
		if ok && x.Target == caller {
			d = Decision{ID: id, Status: xferstate.ForPeer(x.Status), From: x.From, To: x.To, AmountUnits: x.AmountUnits, Currency: p.Currency}
		}
		out.Decisions[i] = d
	}
	return out, nil
}

func (p *Participant) account(r *http.Request, _ string) (any, error) {
	ok, err := p.Store.AccountExists(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return AccountAnswer{Exists: ok}, nil
}

// remoteError is an error answer from a peer.
type remoteError struct {
	Status  int
	Code    apperr.Code
	Message string
}

func (e *remoteError) Error() string {
	return fmt.Sprintf("peer answered %d %s: %s", e.Status, e.Code, e.Message)
}

// IsRejection reports whether err is a definite refusal by the peer (its
// answer will not change on retry): 4xx other than 401/403 (which may be a
// peer set not yet updated) and 429.
func IsRejection(err error) bool {
	var re *remoteError
	if !errors.As(err, &re) {
		return false
	}
	return re.Status >= 400 && re.Status < 500 && re.Status != 401 && re.Status != 403 && re.Status != 429
}
