package activities

import "context"

// FederationPuller pulls one page of a peer's signed card feed, verifies
// it and stores what it may (federation.CardSync implements it).
type FederationPuller interface {
	PullOnce(ctx context.Context, peer string) (FederationPullResult, error)
}

// FederationPullResult is one pull: Active is false when the peer's
// licence is no longer active here (the sync stops); More when the page
// was full, so the next pull should not wait.
type FederationPullResult struct {
	Active   bool
	More     bool
	Received int
	Stored   int
	Rejected int
	Bytes    int64
	Cursor   int64
}

// FederationSync runs the card sync's pulls.
type FederationSync struct {
	Puller FederationPuller
}

// PullCards pulls the next page of peer's feed. Idempotent: the page and
// the cursor it moves commit together, so a retried pull starts where the
// last committed one ended. A peer's refusal or an unreachable peer is an
// ordinary error (retried, then the next cycle tries again).
func (f *FederationSync) PullCards(ctx context.Context, peer string) (FederationPullResult, error) {
	return f.Puller.PullOnce(ctx, peer)
}
