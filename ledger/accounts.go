package ledger

import (
	"fmt"
	"strings"
)

// Kind classifies an account.
type Kind string

// Account kinds. Agent and developer accounts belong to a principal; system
// and transit accounts belong to the registry.
const (
	KindAgent     Kind = "agent"     // did:theprotocol:<uuid>
	KindDeveloper Kind = "developer" // dev:<id>
	KindSystem    Kind = "system"    // treasury, fee_collector, issuance
	KindTransit   Kind = "transit"   // transit:<peer>, for cross-registry/-frame flows
)

// System accounts every TEG database has (created by its migrations).
const (
	AccountTreasury     = "treasury"
	AccountFeeCollector = "fee_collector"
	// AccountIssuance is the contra account of mints and burns: minting
	// debits it, so its balance is −(issued − burned). It is the only
	// account whose buckets may go negative.
	AccountIssuance = "issuance"
)

// MaxAccountIDLen bounds account identifiers (the database enforces it too).
const MaxAccountIDLen = 200

const (
	didPrefix     = "did:theprotocol:"
	devPrefix     = "dev:"
	transitPrefix = "transit:"
	bridgePrefix  = "bridge:"
)

// BridgeEscrowAccount is the system account whose locked_bridge bucket
// holds this frame's native value sent to frame (what frame's wrapped
// tokens of this frame's currency stand for).
func BridgeEscrowAccount(frame string) string { return bridgePrefix + frame }

// The identifier shapes below are checked by byte loops rather than
// regexps: KindOf runs for both parties of every transfer, and the regexp
// engine cost ~1 µs per call (ledger_test checks the loops against the
// patterns they implement, written next to each).

// isDIDUUID: ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$
func isDIDUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// isDevID: ^[A-Za-z0-9._-]{1,64}$
func isDevID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// isTransitID: ^[a-z0-9][a-z0-9:._-]{0,63}$
func isTransitID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == ':' || c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// KindOf validates an account identifier and returns its kind. DIDs must use
// the canonical lower-case UUID form so one agent cannot have two spellings.
func KindOf(id string) (Kind, error) {
	switch {
	case id == AccountTreasury || id == AccountFeeCollector || id == AccountIssuance:
		return KindSystem, nil
	case strings.HasPrefix(id, bridgePrefix):
		if frameID.MatchString(id[len(bridgePrefix):]) {
			return KindSystem, nil
		}
		return "", fmt.Errorf("account %q: a bridge escrow must be bridge:<frame id>", clip(id))
	case strings.HasPrefix(id, didPrefix):
		if isDIDUUID(id[len(didPrefix):]) {
			return KindAgent, nil
		}
		return "", fmt.Errorf("account %q: a DID must be did:theprotocol:<lower-case uuid>", clip(id))
	case strings.HasPrefix(id, devPrefix):
		if isDevID(id[len(devPrefix):]) {
			return KindDeveloper, nil
		}
		return "", fmt.Errorf("account %q: a developer wallet must be dev:<1-64 of [A-Za-z0-9._-]>", clip(id))
	case strings.HasPrefix(id, transitPrefix):
		if isTransitID(id[len(transitPrefix):]) {
			return KindTransit, nil
		}
		return "", fmt.Errorf("account %q: a transit account must be transit:<1-64 of [a-z0-9:._-]>", clip(id))
	}
	return "", fmt.Errorf("account %q is not a DID, dev:<id>, transit:<id> or a system account", clip(id))
}

// IsUserKind reports whether accounts of kind k belong to a principal (agent
// or developer) and can send and receive ordinary transfers.
func IsUserKind(k Kind) bool { return k == KindAgent || k == KindDeveloper }

// MayGoNegative reports whether an account's buckets may be negative. Only
// issuance may; the database enforces the same rule with a CHECK constraint.
func MayGoNegative(account string) bool { return account == AccountIssuance }

// clip shortens attacker-supplied identifiers before they go into messages.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
