// Package recon holds the pure rules of reconciliation: how a TEG's
// balances are summarised into a checkpoint (sums per bucket and account
// class, a digest of every non-zero balance), how the EventStore's own
// projection of the same registry is compared with it, how the transit
// accounts of two registries must net against the transfers still in
// flight between them, and when a difference has lasted long enough to fail
// the supply audit. No I/O: the TEG store and the EventStore feed it rows.
//
// Both sides compute the summary with the same code, so a difference is
// never an artefact of two implementations; it means the EventStore's view
// of the registry is not the registry's own.
package recon
