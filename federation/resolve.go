package federation

import (
	"context"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/ledger"
)

// Router finds the peer registry where an account lives ("" when none);
// more than one claimant is apperr.AmbiguousHome. *xfer.Router implements
// it.
type Router interface {
	Home(ctx context.Context, account string) (string, error)
}

// Resolver answers where an agent DID or developer wallet lives: this
// registry when its TEG has the account, else the one peer that claims
// it. Two claimants are a conflict the answer names (409
// ambiguous_home_registry, logged and counted by the router) and never
// settle by order.
type Resolver struct {
	Self   string
	Local  func(ctx context.Context, account string) (bool, error)
	Router Router
}

// Resolution is where an account lives.
type Resolution struct {
	Account  string `json:"account"`
	Registry string `json:"registry"`
	Local    bool   `json:"local"`
}

// Resolve returns account's home. Errors: Invalid (not an agent DID or a
// developer wallet), NotFound (no registry claims it), AmbiguousHome,
// Unavailable (peers unreachable).
func (r *Resolver) Resolve(ctx context.Context, account string) (Resolution, error) {
	if k, err := ledger.KindOf(account); err != nil || !ledger.IsUserKind(k) {
		return Resolution{}, apperr.New(apperr.Invalid, "%q is not an agent DID or a developer wallet", clip(account))
	}
	local, err := r.Local(ctx, account)
	if err != nil {
		return Resolution{}, err
	}
	if local {
		return Resolution{Account: account, Registry: r.Self, Local: true}, nil
	}
	if r.Router == nil {
		return Resolution{}, apperr.New(apperr.NotFound, "%s is not on this registry", account)
	}
	home, err := r.Router.Home(ctx, account)
	if err != nil {
		return Resolution{}, err
	}
	if home == "" {
		return Resolution{}, apperr.New(apperr.NotFound, "no registry reachable from %s claims %s", r.Self, account)
	}
	return Resolution{Account: account, Registry: home}, nil
}
