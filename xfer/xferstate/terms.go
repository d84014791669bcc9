package xferstate

import (
	"fmt"
	"strings"
)

// Terms are what the two registries of a transfer must agree on before
// any money moves: who sends, who receives, how much and in which
// currency. The coordinator's record (written when its API accepted the
// transfer) is the reference; the participant's prepare must carry the
// same terms, and its commit credits only a prepare whose terms equal
// the ones the coordinator states again at commit.
//
// Terms travel in workflow payloads and between registries, so the field
// names never change.
type Terms struct {
	From        string
	To          string
	AmountUnits int64
	Currency    string
}

// Reasons a terms check gives.
const (
	// ReasonTermsMismatch prefixes the abort reason of a transfer whose
	// target recorded other terms than the source.
	ReasonTermsMismatch = "the target registry's prepared terms differ from the source's record"
	// ReasonTermsUnreported: the target said prepared without saying what
	// it prepared, so nothing can be compared.
	ReasonTermsUnreported = "the target registry did not report the terms it prepared"
)

// Diff names every term of other that differs from t ("" when they are
// equal), as "amount 5 (recorded 1)" items joined by "; ".
func (t Terms) Diff(other Terms) string {
	var d []string
	if other.From != t.From {
		d = append(d, fmt.Sprintf("from %q (recorded %q)", clip(other.From), clip(t.From)))
	}
	if other.To != t.To {
		d = append(d, fmt.Sprintf("to %q (recorded %q)", clip(other.To), clip(t.To)))
	}
	if other.AmountUnits != t.AmountUnits {
		d = append(d, fmt.Sprintf("amount %d (recorded %d)", other.AmountUnits, t.AmountUnits))
	}
	if other.Currency != t.Currency {
		d = append(d, fmt.Sprintf("currency %q (recorded %q)", clip(other.Currency), clip(t.Currency)))
	}
	return strings.Join(d, "; ")
}

// clip keeps a peer-supplied string short enough for a reason and valid
// UTF-8 (reasons are stored as text).
func clip(s string) string { return bound(s, 64) }

// MaxReasonBytes bounds the reasons CheckTerms gives (the coordinator
// stores at most 500 bytes of a reason).
const MaxReasonBytes = 400

// bound cuts s to at most n bytes without splitting a character, marking
// the cut with "…".
func bound(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "?")
	}
	return strings.ToValidUTF8(s[:n-len("…")], "") + "…"
}

// CheckTerms is the decision's guard on the target's prepare. Given the
// proposal the prepare answer led to (Propose), the terms the source
// recorded and the terms the target reported it prepared (nil when it
// reported none), it returns the proposal to record and, when the terms
// do not agree, what differs:
//
//   - reported terms that differ from the record turn any proposal into
//     an abort (ReasonTermsMismatch), whatever the target answered: a
//     target holding other terms for this transfer ID must never be
//     told to commit;
//   - a commit proposal without reported terms aborts too
//     (ReasonTermsUnreported): "prepared" alone proves nothing;
//   - otherwise the proposal stands.
//
// A commit therefore leaves CheckTerms only when the target reported
// exactly the recorded terms.
func CheckTerms(p Proposal, recorded Terms, reported *Terms) (Proposal, string) {
	switch {
	case reported != nil:
		if d := recorded.Diff(*reported); d != "" {
			p.Commit, p.Reason = false, bound(ReasonTermsMismatch+": "+d, MaxReasonBytes)
			return p, d
		}
	case p.Commit:
		p.Commit, p.Reason = false, ReasonTermsUnreported
		return p, "no terms reported"
	}
	return p, ""
}
