// Package federation holds the flows between the registries of a frame
// that are not payments: the mainframe funding an operator registry's
// treasury (funding.go) and the operator-managed peer set (peers.go).
package federation

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
)

// MaxReasonBytes bounds an allocation's reason (it becomes the transfer's
// memo with the actor, within the ledger's memo limit).
const MaxReasonBytes = 200

// Forwarder accepts a cross-registry transfer and hands it to the
// settlement saga. *payments.Service implements it.
type Forwarder interface {
	Forward(ctx context.Context, r ledgerstore.XferRequest) (ledgerstore.Xfer, error)
}

// Funding moves value from this registry's treasury to a peer registry's
// treasury through the cross-registry saga. Only the frame's mainframe
// funds; the target accepts it only from its frame's mainframe (the TEG's
// TreasuryFunder), so the allocation is checked on both sides.
type Funding struct {
	Self      string // this registry
	Mainframe bool   // this registry is the frame's mainframe
	Payments  Forwarder
	// Known reports whether this TEG can route to registry (a peer, or a
	// registry of its trusted set).
	Known func(registry string) bool
}

// Allocation asks to fund Registry's treasury with AmountUnits.
type Allocation struct {
	Registry       string
	AmountUnits    int64
	Reason         string
	Actor          string // who asked (the admin's subject), recorded in the memo
	IdempotencyKey string
}

// Allocate accepts the allocation (202 semantics: the saga settles it; the
// transfer is followed like any cross-registry transfer). A retry with the
// same key returns the original. Errors: FailedPrecondition (not the
// mainframe), Invalid (bad input), NotFound (not a peer),
// InsufficientFunds (treasury short), Unavailable (backlog full).
func (f *Funding) Allocate(ctx context.Context, a Allocation) (ledgerstore.Xfer, error) {
	if !f.Mainframe {
		return ledgerstore.Xfer{}, apperr.New(apperr.FailedPrecondition,
			"only the frame's mainframe funds other registries; %s is not the mainframe", f.Self)
	}
	if err := a.validate(f.Self); err != nil {
		return ledgerstore.Xfer{}, err
	}
	if f.Known == nil || !f.Known(a.Registry) {
		return ledgerstore.Xfer{}, apperr.New(apperr.NotFound, "registry %q is neither a peer of %s nor reached through one", a.Registry, f.Self)
	}
	memo := "treasury allocation by " + a.Actor + ": " + a.Reason
	if len(memo) > ledgerstore.MaxMemoBytes {
		memo = clipUTF8(memo, ledgerstore.MaxMemoBytes)
	}
	return f.Payments.Forward(ctx, ledgerstore.XferRequest{
		From: ledger.AccountTreasury, To: ledger.AccountTreasury, Target: a.Registry,
		AmountUnits: a.AmountUnits, Memo: memo, IdempotencyKey: a.IdempotencyKey,
	})
}

func (a Allocation) validate(self string) error {
	switch {
	case a.Registry == "":
		return apperr.New(apperr.Invalid, "registry is required")
	case a.Registry == self:
		return apperr.New(apperr.Invalid, "a registry cannot fund itself")
	case a.AmountUnits <= 0:
		return apperr.New(apperr.Invalid, "the amount must be positive")
	case strings.TrimSpace(a.Reason) == "":
		return apperr.New(apperr.Invalid, "reason is required (it is recorded with the transfer)")
	case len(a.Reason) > MaxReasonBytes || !utf8.ValidString(a.Reason):
		return apperr.New(apperr.Invalid, "reason must be valid UTF-8 of at most %d bytes", MaxReasonBytes)
	case a.IdempotencyKey == "":
		return apperr.New(apperr.Invalid, "an Idempotency-Key is required")
	}
	if _, err := ledger.KindOf("transit:" + a.Registry); err != nil {
		return apperr.New(apperr.Invalid, "registry %q is not a registry ID", clip(a.Registry))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return clipUTF8(s, 40) + "…"
	}
	return s
}

// clipUTF8 cuts s to at most n bytes without splitting a rune.
func clipUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
