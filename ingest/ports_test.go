package ingest_test

import (
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/relay"
)

// The ports the EventStore side implements for its callers (the TEG's
// mint gate, the outbox relays); asserted here so that ingest, a data
// package like the stores, imports neither.
var (
	_ ledgerstore.SupplyGate = ingest.SupplyGate{}
	_ relay.ProgressReader   = ingest.ProgressReader{}
)
