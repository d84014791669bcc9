package ledgerstore_test

import (
	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/sagaapi"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/onboarding"
	"github.com/theprotocol-dev/theprotocol/payments"
	"github.com/theprotocol-dev/theprotocol/stakes"
	"github.com/theprotocol-dev/theprotocol/xfer"
)

// The ports the store implements, each declared by the package that calls
// it. The assertions live here, beside the implementation but in the
// external test package, because a store never imports its callers: they
// sit above it and their ports speak the store's own types (an import
// from the store would be a cycle). go vet and every test build check
// them; the node's wiring checks them again at build.
var (
	_ onboarding.Ledger        = (*ledgerstore.Store)(nil)
	_ payments.Ledger          = (*ledgerstore.Store)(nil)
	_ payments.Transferer      = (*ledgerstore.Store)(nil)
	_ payments.Transferer      = (*ledgerstore.GroupCommitter)(nil)
	_ stakes.Ledger            = (*ledgerstore.Store)(nil)
	_ activities.HoldExpirer   = (*ledgerstore.Store)(nil)
	_ activities.StakingLedger = (*ledgerstore.Store)(nil)
	_ xfer.ParticipantStore    = (*ledgerstore.Store)(nil)
	_ sagaapi.XferGetter       = (*ledgerstore.Store)(nil)
	_ api.IdempotencyStore     = (*ledgerstore.IdempotencyBatcher)(nil)
)
