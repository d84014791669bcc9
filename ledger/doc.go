// Package ledger holds the pure domain rules of the TEG ledger (SPEC §4):
// account identifiers and kinds, balance buckets, the intra-registry fee
// curve with velocity scaling, and validation of amounts and postings.
//
// It does no I/O and imports only the standard library and package money;
// db/ledgerstore applies these rules inside database transactions and the
// database re-checks the invariants that matter most (non-negative
// non-system buckets, journal entries summing to zero) with CHECK constraints.
//
// See README.md in this directory for the fee curve and the design choices
// (fee deducted from the amount, netted fee-collector credits per batch).
package ledger
