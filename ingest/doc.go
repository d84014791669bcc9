// Package ingest is the frame's EventStore: a Kafka consumer that writes
// every event of the frame's topic exactly once into the event log
// (deduplicated by idempotency key), maintains the projections (balances per
// account and bucket, the supply audit, per-source progress) in the same
// transaction, and only then commits Kafka offsets. It also detects gaps in
// each source's sequence numbers (a relay re-publishes them), quarantines
// events the emission policy refuses, recomputes everything from the raw
// events for `audit --replay`, and hosts reactors.
//
// With WithAuthentication it accepts a record only when the registry its
// envelope names signed it (events.Verifier against the keys of the trust
// directory, trust.go; docs/adr/0016), and deduplicates by idempotency key
// within each registry. Whatever a topic writer sends — unsigned or forged
// records, garbage, sequence numbers out of range — is quarantined with a
// reason and never fails a batch.
//
// It is also the store of the EventStore database: its generated queries
// live in internal/eventdb, and the API and the command line read the
// projections through its functions (Audit, Progress, Balances).
//
// Account names in events are local to the emitting registry except DIDs.
// The EventStore qualifies them as "<registry>/<account>" (see Qualify) so
// two registries' treasuries stay distinct in the frame-wide projections.
//
// Supply audit terms (SPEC §5), from the EventStore's own data only:
//
//	tokens_issued      Σ credits to the issuance account's counterpart, i.e. −Σ negative issuance postings
//	compensation_issued the same, for DisputeCompensationMinted events only (dispute
//	                   compensation is issuance with its own term; tokens_issued excludes it)
//	tokens_destroyed   Σ positive issuance postings (burns)
//	transit_net        −Σ postings on cross-frame contra accounts ("xframe:<frame>"): value that
//	                   entered the frame from elsewhere minus value that left it
//	total_circulating  Σ balances of every other account, native buckets only
//	net_supply         tokens_issued + compensation_issued − tokens_destroyed + transit_net
//	delta              net_supply − total_circulating, which must be exactly 0
//
// Every applied event is checked to be zero-sum per currency (native buckets,
// and each wrapped:<frame> bucket on its own); an unbalanced event is
// quarantined. So a non-zero delta means the projections were corrupted or
// an event was applied twice or partially — exactly what `audit --replay`
// then pinpoints.
//
// The delta cannot see an event that never arrived, a balanced forgery or
// a transit credit with no decision behind it: reconciliation does
// (reconcile.go, docs/adr/0015). Each TEG's BalanceCheckpoint states its
// balances as of an outbox sequence number; the reconciler folds that
// registry's events in sequence order and compares, and nets the transit
// accounts of every pair of registries against the cross-registry
// decisions in flight. The audit (Audit: Failures, OK) fails on any
// difference that outlasts the grace period.
package ingest
