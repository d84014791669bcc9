package federation

import (
	"context"
	"log/slog"
	"sort"
	"strings"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/ledger"
)

// Router finds the registry where an account lives among the registries
// this one trusts ("" when none); more than one claimant is
// apperr.AmbiguousHome. *xfer.Router implements it: it asks this
// registry's peers and the registries discovered beyond them.
type Router interface {
	Home(ctx context.Context, account string) (string, error)
}

// CardSource answers from verified agent cards: the origin registries
// whose signed cards claim account (none: no card known, and the graph is
// asked instead). It is the first source of a resolution when present.
type CardSource interface {
	Origins(ctx context.Context, account string) ([]string, error)
}

// Resolver answers where an agent DID or developer wallet lives: this
// registry when its TEG has the account, else the registry a signed card
// names (Cards, when there is one), else the one registry of the trusted
// set that claims it (Router). Two claimants are a conflict the answer
// names (409 ambiguous_home_registry, logged and counted) and never
// settle by order.
type Resolver struct {
	Self   string
	Local  func(ctx context.Context, account string) (bool, error)
	Cards  CardSource // nil: no card sync on this node
	Router Router
	// Trusted, when set, says whether a registry a card names is in the
	// trusted set: a card naming a registry this one cannot reach is not
	// a route (the graph is asked instead).
	Trusted func(registry string) bool
	Log     *slog.Logger
	Metrics *DiscoveryMetrics
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
	home, err := r.Home(ctx, account)
	if err != nil {
		return Resolution{}, err
	}
	if home == "" {
		return Resolution{}, apperr.New(apperr.NotFound, "no registry reachable from %s claims %s", r.Self, account)
	}
	return Resolution{Account: account, Registry: home}, nil
}

// Home returns the other registry where account lives ("" when none is
// known): the payment router's lookup (payments.Router), after the caller
// found no local account. Errors: AmbiguousHome, Unavailable.
func (r *Resolver) Home(ctx context.Context, account string) (string, error) {
	if r.Cards != nil {
		origins, err := r.Cards.Origins(ctx, account)
		if err != nil {
			return "", err
		}
		var claims []string
		for _, o := range origins {
			if o != "" && o != r.Self && !containsStr(claims, o) && (r.Trusted == nil || r.Trusted(o)) {
				claims = append(claims, o)
			}
		}
		switch len(claims) {
		case 0:
		case 1:
			return claims[0], nil
		default:
			return "", r.conflict("cards", account, claims)
		}
	}
	if r.Router == nil {
		return "", nil
	}
	home, err := r.Router.Home(ctx, account)
	if apperr.Is(err, apperr.AmbiguousHome) {
		r.Metrics.HomeConflict("graph")
	}
	return home, err
}

func (r *Resolver) conflict(source, account string, claims []string) error {
	sort.Strings(claims)
	r.Metrics.HomeConflict(source)
	if r.Log != nil {
		r.Log.Error("account claimed by several registries: payments to it are refused until an operator resolves it",
			"account", account, "registries", claims, "source", source)
	}
	return apperr.New(apperr.AmbiguousHome,
		"account %s is claimed by registries %s: it cannot be paid across registries until an operator resolves the conflict",
		account, strings.Join(claims, ", "))
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
