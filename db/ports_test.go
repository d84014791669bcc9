package db_test

import (
	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/db"
)

// The ports the idempotency store implements, declared by their callers;
// asserted in the external test package as db never imports its callers
// (api imports db).
var (
	_ api.IdempotencyStore          = (*db.IdempotencyStore)(nil)
	_ activities.IdempotencySweeper = (*db.IdempotencyStore)(nil)
)
