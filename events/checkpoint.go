package events

import (
	"strconv"
	"time"

	"github.com/theprotocol-dev/theprotocol/recon"
)

// BalanceCheckpoint is the payload of TypeBalanceCheckpoint: what the
// emitting TEG's balances were once every event it wrote up to CoversSeq
// (its own outbox sequence numbers) had been applied, and no later one.
// The EventStore folds that registry's events up to CoversSeq and compares
// (package recon). The event itself has no postings.
type BalanceCheckpoint struct {
	CoversSeq int64     `json:"covers_seq"`
	TakenAt   time.Time `json:"taken_at"`
	recon.Summary
}

// BalanceCheckpointKey is the checkpoint's idempotency key: one per
// registry and covered sequence number, so a retried write is a duplicate.
func BalanceCheckpointKey(registry string, coversSeq int64) string {
	return "balance-checkpoint-" + registry + "-" + strconv.FormatInt(coversSeq, 10)
}
