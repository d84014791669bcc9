package ledger

import (
	"fmt"
	"regexp"
	"strings"
)

// Bucket names a balance of an account (SPEC §4).
type Bucket = string

// Buckets. Wrapped buckets are per source frame: WrappedBucket("beta").
const (
	BucketLiquid       Bucket = "liquid"        // spendable, minus active holds
	BucketStaked       Bucket = "staked"        // staking positions
	BucketLockedBond   Bucket = "locked_bond"   // reputation bonds
	BucketLockedBridge Bucket = "locked_bridge" // escrow for cross-frame bridges
	BucketPendingOut   Bucket = "pending_out"   // cross-registry transfers in flight
	wrappedPrefix             = "wrapped:"
)

var frameID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// WrappedBucket returns the bucket holding tokens wrapped from frame.
func WrappedBucket(frame string) Bucket { return wrappedPrefix + frame }

// ValidateBucket reports whether b is a known bucket. The database has the
// same rule as a CHECK constraint.
func ValidateBucket(b string) error {
	switch b {
	case BucketLiquid, BucketStaked, BucketLockedBond, BucketLockedBridge, BucketPendingOut:
		return nil
	}
	if f, ok := strings.CutPrefix(b, wrappedPrefix); ok && frameID.MatchString(f) {
		return nil
	}
	return fmt.Errorf("unknown bucket %q", clip(b))
}
