package registrystore_test

import (
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
)

// The ports the store implements, declared by their callers; asserted in
// the external test package as a store never imports its callers.
var _ auth.StateChecker = (*registrystore.Store)(nil)
