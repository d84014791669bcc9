package split

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/bonds"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/onboarding"
)

// TEGLedger is what the TEG serves to its registry: the ledger steps of
// onboarding. *ledgerstore.Store implements it.
type TEGLedger = onboarding.Ledger

var _ TEGLedger = (*ledgerstore.Store)(nil)

// AccountRequest opens an account.
type AccountRequest struct {
	ID   string      `json:"id"`
	Kind ledger.Kind `json:"kind"`
}

// AccountAnswer is the opened (or already open) account.
type AccountAnswer struct {
	ID        string      `json:"id"`
	Kind      ledger.Kind `json:"kind"`
	CreatedAt time.Time   `json:"created_at"`
	Created   bool        `json:"created"`
}

// BondRequest locks or voids a reputation bond.
type BondRequest struct {
	AgentDID       string `json:"agent_did"`
	DevAccount     string `json:"dev_account"`
	AmountUnits    int64  `json:"amount_units"`
	IdempotencyKey string `json:"idempotency_key"`
}

// BondAnswer is the bond move, new or replayed.
type BondAnswer struct {
	ID             string    `json:"id"`
	Kind           string    `json:"kind"`
	AgentDID       string    `json:"agent_did"`
	CounterAccount string    `json:"counter_account"`
	AmountUnits    int64     `json:"amount_units"`
	IdempotencyKey string    `json:"idempotency_key"`
	CreatedAt      time.Time `json:"created_at"`
	Replayed       bool      `json:"replayed"`
}

// maxKeyLen bounds a bond move's idempotency key (the registry derives it
// from the DID).
const maxKeyLen = 128

// Slasher is what the EventStore's reactors ask of the TEG
// (disputes.Slasher): *ledgerstore.Store implements it.
type Slasher interface {
	GetDispute(ctx context.Context, id uuid.UUID) (ledgerstore.Dispute, error)
	SlashStake(ctx context.Context, req ledgerstore.SlashRequest) (ledgerstore.Slash, error)
}

var _ Slasher = (*ledgerstore.Store)(nil)

// BondStatuses reports an agent's reputation bond (*bonds.Service).
type BondStatuses interface {
	Status(ctx context.Context, agentDID string) (bonds.Status, error)
}

var _ BondStatuses = (*bonds.Service)(nil)

// SlashRequest slashes an agent's stake for an enforcement case.
type SlashRequest struct {
	AgentDID string `json:"agent_did"`
	CaseID   string `json:"case_id"`
	Reason   string `json:"reason"`
	Actor    string `json:"actor"`
}

// TEGServer serves a TEG's ledger steps to its registry's processes.
type TEGServer struct {
	Ledger TEGLedger
	// Slasher serves disputes and slashes (nil: not served).
	Slasher Slasher
	// Bonds serves bond statuses (nil: not served).
	Bonds BondStatuses
	// Self is the registry's SPIFFE ID, the only caller admitted.
	Self spiffeid.ID
}

// Register mounts the endpoints on the mTLS listener's mux.
func (s *TEGServer) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+PathAccounts, s.serve(s.openAccount))
	mux.HandleFunc("POST "+PathBondLock, s.serve(s.lockBond))
	mux.HandleFunc("POST "+PathBondVoid, s.serve(s.voidBond))
	if s.Bonds != nil {
		mux.HandleFunc("GET "+PathBonds+"{did}", s.serve(s.bondStatus))
	}
	if s.Slasher != nil {
		mux.HandleFunc("GET "+PathDisputes+"{id}", s.serve(s.dispute))
		mux.HandleFunc("POST "+PathSlashes, s.serve(s.slash))
	}
}

// bondStatus answers an agent's bond as the TEG's bond service sees it.
func (s *TEGServer) bondStatus(r *http.Request) (any, error) {
	did := r.PathValue("did")
	if err := checkAccount(did, ledger.KindAgent); err != nil {
		return nil, err
	}
	return s.Bonds.Status(r.Context(), did)
}

// dispute answers the ledger's whole record of a dispute: the reactor
// decides on the TEG's state, never on an event's payload.
func (s *TEGServer) dispute(r *http.Request) (any, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return nil, apperr.New(apperr.Invalid, "not a dispute id: %q", r.PathValue("id"))
	}
	return s.Slasher.GetDispute(r.Context(), id)
}

// slash slashes an agent's stake once per case (the store validates the
// case ID and the reason).
func (s *TEGServer) slash(r *http.Request) (any, error) {
	var in SlashRequest
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := checkAccount(in.AgentDID, ledger.KindAgent); err != nil {
		return nil, err
	}
	return s.Slasher.SlashStake(r.Context(), ledgerstore.SlashRequest{AgentDID: in.AgentDID, CaseID: in.CaseID, Reason: in.Reason, Actor: in.Actor})
}

func (s *TEGServer) serve(h func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !admitted(w, r, s.Self) {
			return
		}
		out, err := h(r)
		if err != nil {
			writeErr(w, apperr.WrapUncoded(err, apperr.Unavailable, "the ledger is unavailable; retry later"))
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// openAccount opens only the accounts onboarding opens: an agent's or a
// developer wallet, whose ID must be of that kind.
func (s *TEGServer) openAccount(r *http.Request) (any, error) {
	var in AccountRequest
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := checkAccount(in.ID, in.Kind); err != nil {
		return nil, err
	}
	a, created, err := s.Ledger.OpenAccount(r.Context(), in.ID, in.Kind)
	if err != nil {
		return nil, err
	}
	return AccountAnswer{ID: a.ID, Kind: a.Kind, CreatedAt: a.CreatedAt, Created: created}, nil
}

func (s *TEGServer) lockBond(r *http.Request) (any, error) {
	return s.bond(r, s.Ledger.LockBond)
}

func (s *TEGServer) voidBond(r *http.Request) (any, error) {
	return s.bond(r, s.Ledger.VoidBond)
}

type bondMove func(ctx context.Context, agentDID, devAccount string, amountUnits int64, key string) (ledgerstore.BondMove, error)

func (s *TEGServer) bond(r *http.Request, move bondMove) (any, error) {
	var in BondRequest
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := checkBond(in); err != nil {
		return nil, err
	}
	m, err := move(r.Context(), in.AgentDID, in.DevAccount, in.AmountUnits, in.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	return bondAnswer(m), nil
}

func checkAccount(id string, kind ledger.Kind) error {
	if kind != ledger.KindAgent && kind != ledger.KindDeveloper {
		return apperr.New(apperr.Invalid, "kind must be %s or %s, got %q", ledger.KindAgent, ledger.KindDeveloper, kind)
	}
	k, err := ledger.KindOf(id)
	if err != nil {
		return apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if k != kind {
		return apperr.New(apperr.Invalid, "account %q is of kind %s, not %s", id, k, kind)
	}
	return nil
}

func checkBond(in BondRequest) error {
	if err := checkAccount(in.AgentDID, ledger.KindAgent); err != nil {
		return err
	}
	if err := checkAccount(in.DevAccount, ledger.KindDeveloper); err != nil {
		return err
	}
	if in.AmountUnits <= 0 {
		return apperr.New(apperr.Invalid, "amount_units must be positive, got %d", in.AmountUnits)
	}
	if in.IdempotencyKey == "" || len(in.IdempotencyKey) > maxKeyLen {
		return apperr.New(apperr.Invalid, "idempotency_key must be 1 to %d characters", maxKeyLen)
	}
	return nil
}

func bondAnswer(m ledgerstore.BondMove) BondAnswer {
	return BondAnswer{ID: m.ID.String(), Kind: m.Kind, AgentDID: m.AgentDID, CounterAccount: m.CounterAccount,
		AmountUnits: m.AmountUnits, IdempotencyKey: m.IdempotencyKey, CreatedAt: m.CreatedAt, Replayed: m.Replayed}
}

// TEGClient is the registry's ledger when its TEG runs in another process:
// onboarding's saga runs unchanged against it (same order, same
// compensations, same keys).
type TEGClient struct{ caller }

var _ onboarding.Ledger = (*TEGClient)(nil)

// NewTEGClient calls the TEG whose mTLS listener is at base (https).
func NewTEGClient(base string) (*TEGClient, error) {
	if err := checkBase(base); err != nil {
		return nil, err
	}
	c := &TEGClient{}
	c.base = base
	return c, nil
}

// OpenAccount implements onboarding.Ledger.
func (c *TEGClient) OpenAccount(ctx context.Context, id string, kind ledger.Kind) (ledgerstore.Account, bool, error) {
	var out AccountAnswer
	if err := c.do(ctx, "TEG", http.MethodPost, PathAccounts, nil, AccountRequest{ID: id, Kind: kind}, &out); err != nil {
		return ledgerstore.Account{}, false, err
	}
	if out.ID != id || out.Kind != kind {
		return ledgerstore.Account{}, false, apperr.New(apperr.Unavailable, "the TEG answered for account %q (%s), not %q (%s)", out.ID, out.Kind, id, kind)
	}
	return ledgerstore.Account{ID: out.ID, Kind: out.Kind, CreatedAt: out.CreatedAt}, out.Created, nil
}

// LockBond implements onboarding.Ledger.
func (c *TEGClient) LockBond(ctx context.Context, agentDID, devAccount string, amountUnits int64, key string) (ledgerstore.BondMove, error) {
	return c.bond(ctx, PathBondLock, BondRequest{AgentDID: agentDID, DevAccount: devAccount, AmountUnits: amountUnits, IdempotencyKey: key})
}

// VoidBond implements onboarding.Ledger.
func (c *TEGClient) VoidBond(ctx context.Context, agentDID, devAccount string, amountUnits int64, key string) (ledgerstore.BondMove, error) {
	return c.bond(ctx, PathBondVoid, BondRequest{AgentDID: agentDID, DevAccount: devAccount, AmountUnits: amountUnits, IdempotencyKey: key})
}

// Status reports the agent's bond from the TEG's process (the registry's
// GET /agents/{did}/reputation-bond).
func (c *TEGClient) Status(ctx context.Context, agentDID string) (bonds.Status, error) {
	if err := checkAccount(agentDID, ledger.KindAgent); err != nil {
		return bonds.Status{}, err
	}
	var out bonds.Status
	if err := c.do(ctx, "TEG", http.MethodGet, PathBonds+agentDID, nil, nil, &out); err != nil {
		return bonds.Status{}, err
	}
	if out.AgentDID != agentDID {
		return bonds.Status{}, apperr.New(apperr.Unavailable, "the TEG answered for the bond of %q, not %q", out.AgentDID, agentDID)
	}
	return out, nil
}

// GetDispute implements disputes.Slasher.
func (c *TEGClient) GetDispute(ctx context.Context, id uuid.UUID) (ledgerstore.Dispute, error) {
	var out ledgerstore.Dispute
	if err := c.do(ctx, "TEG", http.MethodGet, PathDisputes+id.String(), nil, nil, &out); err != nil {
		return ledgerstore.Dispute{}, err
	}
	if out.ID != id {
		return ledgerstore.Dispute{}, apperr.New(apperr.Unavailable, "the TEG answered for dispute %s, not %s", out.ID, id)
	}
	return out, nil
}

// SlashStake implements disputes.Slasher.
func (c *TEGClient) SlashStake(ctx context.Context, req ledgerstore.SlashRequest) (ledgerstore.Slash, error) {
	var out ledgerstore.Slash
	in := SlashRequest{AgentDID: req.AgentDID, CaseID: req.CaseID, Reason: req.Reason, Actor: req.Actor}
	if err := c.do(ctx, "TEG", http.MethodPost, PathSlashes, nil, in, &out); err != nil {
		return ledgerstore.Slash{}, err
	}
	if out.CaseID != req.CaseID || out.AgentDID != req.AgentDID {
		return ledgerstore.Slash{}, apperr.New(apperr.Unavailable, "the TEG answered for case %q of %s, not %q of %s", out.CaseID, out.AgentDID, req.CaseID, req.AgentDID)
	}
	return out, nil
}

func (c *TEGClient) bond(ctx context.Context, path string, in BondRequest) (ledgerstore.BondMove, error) {
	var out BondAnswer
	if err := c.do(ctx, "TEG", http.MethodPost, path, nil, in, &out); err != nil {
		return ledgerstore.BondMove{}, err
	}
	if out.AgentDID != in.AgentDID || out.IdempotencyKey != in.IdempotencyKey {
		return ledgerstore.BondMove{}, apperr.New(apperr.Unavailable, "the TEG answered for bond move %q of %s, not %q of %s", out.IdempotencyKey, out.AgentDID, in.IdempotencyKey, in.AgentDID)
	}
	m := ledgerstore.BondMove{Kind: out.Kind, AgentDID: out.AgentDID, CounterAccount: out.CounterAccount, AmountUnits: out.AmountUnits,
		IdempotencyKey: out.IdempotencyKey, CreatedAt: out.CreatedAt, Replayed: out.Replayed}
	if id, err := uuid.Parse(out.ID); err == nil {
		m.ID = id
	}
	return m, nil
}
