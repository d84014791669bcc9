package ledgerstore_test

import (
	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/proposals"
)

var (
	_ activities.GovernanceLedger = (*ledgerstore.Store)(nil)
	_ proposals.Ledger            = (*ledgerstore.Store)(nil)
	_ proposals.Developers        = (*registrystore.Store)(nil)
)
