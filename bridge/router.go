package bridge

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/payments"
)

// PathAccount asks a peer frame's mainframe whether an account lives there.
const PathAccount = "/internal/v1/bridge/account"

// AccountRequest asks whether an account is on the answering mainframe.
type AccountRequest struct {
	Account string `json:"account"`
}

// AccountAnswer answers an AccountRequest.
type AccountAnswer struct {
	Exists bool `json:"exists"`
}

// Router pays a receiver of another frame (POST /transfers to a DID this
// frame does not know): it asks every peer frame's mainframe whether the
// receiver lives there and sends over the bridge to the one that claims
// it. Only a mainframe receives bridge mints, so an account on another
// registry of a peer frame is not claimed (a mint there would be
// refused).
type Router struct {
	Service *Service
	Client  *Client
	// TTL bounds how long a found home is remembered (default 5 min); a
	// miss is never remembered: the account may be created any time.
	TTL time.Duration
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]homeEntry
}

type homeEntry struct {
	frame   string
	expires time.Time
}

var _ payments.Frames = (*Router)(nil)

// Send accepts r as a bridge send to the peer frame that claims r.To; ok
// is false (nothing written) when none does.
func (r *Router) Send(ctx context.Context, tr ledgerstore.TransferRequest) (ledgerstore.BridgeTransfer, bool, error) {
	frame, err := r.Home(ctx, tr.To)
	if err != nil || frame == "" {
		return ledgerstore.BridgeTransfer{}, false, err
	}
	t, err := r.Service.Start(ctx, Request{Kind: ledgerstore.BridgeSend, Frame: frame, From: tr.From, To: tr.To,
		AmountUnits: tr.AmountUnits, Key: tr.IdempotencyKey})
	return t, err == nil, err
}

// Home returns the peer frame whose mainframe has account, or "" when
// none has it. Peer frames are asked in parallel. Two frames claiming it
// is apperr.AmbiguousHome; no claim while some frame could not answer is
// apperr.Unavailable (retry), as the account may be there.
func (r *Router) Home(ctx context.Context, account string) (string, error) {
	if k, err := ledger.KindOf(account); err != nil || !ledger.IsUserKind(k) {
		return "", nil
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	r.mu.Lock()
	if e, ok := r.cache[account]; ok && now().Before(e.expires) {
		r.mu.Unlock()
		return e.frame, nil
	}
	r.mu.Unlock()
	peers := r.Client.Peers.List()
	type answer struct {
		frame  string
		exists bool
		err    error
	}
	ch := make(chan answer, len(peers))
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for _, p := range peers {
		go func() {
			var out AccountAnswer
			err := r.Client.call(ctx, "account", p.Frame, PathAccount, AccountRequest{Account: account}, &out)
			ch <- answer{p.Frame, out.Exists, err}
		}()
	}
	var claims, failed []string
	for range peers {
		a := <-ch
		switch {
		case a.err != nil:
			failed = append(failed, a.frame)
		case a.exists:
			claims = append(claims, a.frame)
		}
	}
	sort.Strings(claims)
	switch {
	case len(claims) > 1:
		return "", apperr.New(apperr.AmbiguousHome, "account %s is claimed by frames %s: it cannot be paid across frames until an operator resolves the conflict",
			account, strings.Join(claims, ", "))
	case len(claims) == 0 && len(failed) > 0:
		sort.Strings(failed)
		return "", apperr.New(apperr.Unavailable, "%s is on no frame that answered; frames %s did not answer: retry with the same Idempotency-Key",
			account, strings.Join(failed, ", "))
	case len(claims) == 0:
		return "", nil
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	r.mu.Lock()
	if r.cache == nil || len(r.cache) > 100_000 {
		r.cache = map[string]homeEntry{}
	}
	r.cache[account] = homeEntry{frame: claims[0], expires: now().Add(ttl)}
	r.mu.Unlock()
	return claims[0], nil
}

// AccountStore is what the participant reads to answer PathAccount
// (*ledgerstore.Store).
type AccountStore interface {
	AccountExists(ctx context.Context, id string) (bool, error)
}

func (p *Participant) account(r *http.Request, _ Peer) (any, error) {
	var req AccountRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if k, err := ledger.KindOf(req.Account); err != nil || !ledger.IsUserKind(k) {
		return nil, apperr.New(apperr.Invalid, "%q is not an agent DID or a developer wallet", clip(req.Account))
	}
	if p.Accounts == nil {
		return AccountAnswer{}, nil
	}
	ok, err := p.Accounts.AccountExists(r.Context(), req.Account)
	if err != nil {
		return nil, err
	}
	return AccountAnswer{Exists: ok}, nil
}
