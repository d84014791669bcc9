// Package activities holds Temporal activities: methods on structs that
// carry their dependencies (stores, producers, peers, clock, metrics),
// injected at worker start. Every activity is idempotent: it may run more
// than once for the same workflow step, so it keys its writes on business
// identity (workflow ID + step), never on a run ID or a fresh UUID.
package activities
