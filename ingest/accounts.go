package ingest

import "strings"

// Account classes for the supply audit.
type accountClass int

const (
	classCirculating accountClass = iota
	classIssuance
	classCrossFrame
)

// IssuanceAccount is the contra account of mints and burns.
const IssuanceAccount = "issuance"

// CrossFramePrefix marks contra accounts of value entering or leaving the
// frame (bridges).
const CrossFramePrefix = "xframe:"

// WrappedBucketPrefix marks buckets holding another frame's currency.
const WrappedBucketPrefix = "wrapped:"

// Qualify returns the frame-wide name of an account reported by registry:
// DIDs and names already of the form "<registry>/<account>" are global,
// everything else is local to the emitting registry. Events that two
// registries both emit (a cross-registry transfer, deduplicated by key) must
// name system accounts frame-wide so either copy projects identically.
func Qualify(registry, account string) string {
	if strings.HasPrefix(account, "did:") || strings.Contains(account, "/") {
		return account
	}
	return registry + "/" + account
}

// classify looks at the registry-local part of an account name.
func classify(account string) accountClass {
	if i := strings.LastIndexByte(account, '/'); i >= 0 {
		account = account[i+1:]
	}
	switch {
	case account == IssuanceAccount:
		return classIssuance
	case strings.HasPrefix(account, CrossFramePrefix):
		return classCrossFrame
	default:
		return classCirculating
	}
}

// isNative reports whether bucket holds the frame's own currency.
func isNative(bucket string) bool { return !strings.HasPrefix(bucket, WrappedBucketPrefix) }
