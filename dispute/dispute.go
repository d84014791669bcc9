// Package dispute holds the rules of a dispute over a transfer (SPEC §8,
// whitepaper §5.5): who may open one and until when, the windows the
// respondent and the tribunal have, what happens when a window passes
// unused, and the fee a complainant who loses pays to the treasury. Pure
// Go, integer arithmetic only, no I/O; the ledger store enforces these
// rules in its transactions and the Dispute workflow carries the
// deadlines.
//
// The life of a dispute:
//
//	awaiting_response ──respond──► awaiting_ruling ──rule──► ruled ──settle──► (settled)
//	        │                             │
//	        └─respond_by passes──►(defaulted, awaiting_ruling)
//	                                      └─rule_by passes──► lapsed
//
// The tribunal may rule at any time before rule_by, also while the
// response window is still open. Deadline outcomes (docs/adr/0023):
//
//   - no response by respond_by: the respondent is marked in default and
//     the dispute goes to the tribunal anyway; nothing moves;
//   - no ruling by rule_by: the dispute lapses; no money moves, no stake
//     is slashed, no fee is charged and nobody is named loser. Minting
//     compensation and slashing are decisions a person must take.
package dispute

import (
	"errors"
	"fmt"
	"time"

	"github.com/theprotocol-dev/theprotocol/money"
)

// Status is where a dispute is in its life.
type Status string

// The statuses.
const (
	AwaitingResponse Status = "awaiting_response"
	AwaitingRuling   Status = "awaiting_ruling"
	Ruled            Status = "ruled"
	Lapsed           Status = "lapsed"
)

// Open reports whether the dispute still waits for its ruling.
func (s Status) Open() bool { return s == AwaitingResponse || s == AwaitingRuling }

// Outcome names the party the tribunal ruled for.
type Outcome string

// The outcomes.
const (
	ForComplainant Outcome = "complainant"
	ForRespondent  Outcome = "respondent"
)

// ParseOutcome validates an outcome from outside.
func ParseOutcome(s string) (Outcome, error) {
	switch o := Outcome(s); o {
	case ForComplainant, ForRespondent:
		return o, nil
	}
	return "", fmt.Errorf("outcome must be %q or %q", ForComplainant, ForRespondent)
}

// Limits.
const (
	// MaxEvidenceRefBytes bounds an evidence reference (a URL, a content
	// hash): the ledger stores references, never the evidence.
	MaxEvidenceRefBytes = 500
	// MaxReasonBytes bounds the tribunal's reason.
	MaxReasonBytes = 1000
	// MaxWindow bounds every window, so a deadline always fits a timer and
	// a misconfiguration cannot park a dispute for years.
	MaxWindow = 365 * 24 * time.Hour
	// MaxFeeBps is the highest fee rate: the whole claim.
	MaxFeeBps = 10_000
)

// Rules are the dispute parameters a registry applies. They are fixed
// into each dispute when it opens (deadlines and fee due are stored on
// the row), so changing them never changes a pending dispute.
type Rules struct {
	// OpenWindow is how long after a transfer either party may dispute it.
	OpenWindow time.Duration
	// ResponseWindow is how long the respondent has, from the opening.
	ResponseWindow time.Duration
	// RulingWindow is how long the tribunal has after the response window
	// closes (rule_by = respond_by + RulingWindow).
	RulingWindow time.Duration
	// FeeBps is the fee a losing complainant pays to the treasury, in
	// basis points of the claimed amount, rounded up.
	FeeBps int64
}

// DefaultRules: 30 days to open, 7 to respond, 14 more to rule, and a 5 %
// fee on a lost claim.
var DefaultRules = Rules{
	OpenWindow:     30 * 24 * time.Hour,
	ResponseWindow: 7 * 24 * time.Hour,
	RulingWindow:   14 * 24 * time.Hour,
	FeeBps:         500,
}

// Validate checks the rules are usable.
func (r Rules) Validate() error {
	for _, w := range []struct {
		name string
		d    time.Duration
	}{{"open window", r.OpenWindow}, {"response window", r.ResponseWindow}, {"ruling window", r.RulingWindow}} {
		if w.d <= 0 || w.d > MaxWindow {
			return fmt.Errorf("dispute %s must be positive and at most %s, got %s", w.name, MaxWindow, w.d)
		}
	}
	if r.FeeBps < 0 || r.FeeBps > MaxFeeBps {
		return fmt.Errorf("dispute fee must be 0..%d bps, got %d", MaxFeeBps, r.FeeBps)
	}
	return nil
}

// Deadlines are a dispute's two deadlines.
type Deadlines struct {
	RespondBy time.Time
	RuleBy    time.Time
}

// Errors of CheckOpen (the store maps them to codes).
var (
	ErrWindowClosed = errors.New("the dispute window of this transfer has closed")
	ErrOverClaim    = errors.New("the claimed amount exceeds the transfer's amount")
	ErrNotParty     = errors.New("the complainant was not a party to the transfer")
)

// Opening is what CheckOpen needs to know about a transfer and a claim.
type Opening struct {
	Complainant      string
	Sender, Receiver string
	TransferUnits    int64
	TransferAt       time.Time
	ClaimedUnits     int64
	Now              time.Time
}

// CheckOpen decides whether a dispute may open, and returns the
// respondent (the other party), the deadlines and the fee due if the
// complainant loses.
func (r Rules) CheckOpen(o Opening) (respondent string, d Deadlines, feeDue int64, err error) {
	switch o.Complainant {
	case o.Sender:
		respondent = o.Receiver
	case o.Receiver:
		respondent = o.Sender
	default:
		return "", d, 0, ErrNotParty
	}
	if o.ClaimedUnits <= 0 {
		return "", d, 0, errors.New("the claimed amount must be positive")
	}
	if o.ClaimedUnits > o.TransferUnits {
		return "", d, 0, ErrOverClaim
	}
	if !o.Now.Before(o.TransferAt.Add(r.OpenWindow)) {
		return "", d, 0, ErrWindowClosed
	}
	if feeDue, err = r.Fee(o.ClaimedUnits); err != nil {
		return "", d, 0, err
	}
	d.RespondBy = o.Now.Add(r.ResponseWindow)
	d.RuleBy = d.RespondBy.Add(r.RulingWindow)
	return respondent, d, feeDue, nil
}

// Fee is the fee on a lost claim: claimed × FeeBps / 10,000, rounded up
// (fees round up), never more than the claim.
func (r Rules) Fee(claimedUnits int64) (int64, error) {
	if claimedUnits < 0 {
		return 0, errors.New("negative claim")
	}
	f, err := money.MulDivUp(claimedUnits, r.FeeBps, MaxFeeBps)
	if err != nil {
		return 0, err
	}
	return min(f, claimedUnits), nil
}

// CheckAward validates the tribunal's award: a ruling for the complainant
// awards 1..claimed units (the claim when zero is given); a ruling for the
// respondent awards nothing.
func CheckAward(o Outcome, awardUnits, claimedUnits int64) (int64, error) {
	if o == ForRespondent {
		if awardUnits != 0 {
			return 0, errors.New("a ruling for the respondent awards nothing")
		}
		return 0, nil
	}
	if awardUnits == 0 {
		return claimedUnits, nil
	}
	if awardUnits < 0 || awardUnits > claimedUnits {
		return 0, fmt.Errorf("the award must be 1..%d units (the claim)", claimedUnits)
	}
	return awardUnits, nil
}

// FeeCharged is what a losing complainant actually pays: the fee due,
// capped by what they have available (the ledger never goes negative; the
// shortfall is recorded, and the lost dispute still lowers their trust).
func FeeCharged(feeDue, availableUnits int64) int64 {
	return max(min(feeDue, availableUnits), 0)
}

// Settlement is what applying a ruling moved.
type Settlement struct {
	DisputeID         string
	Status            Status
	Outcome           Outcome
	CompensationUnits int64 // minted to the complainant
	FeeUnits          int64 // charged to the complainant, to the treasury
	Replayed          bool  // applied before; nothing moved this time
}

// State is a dispute's status as a workflow step reads it back.
type State struct {
	DisputeID string
	Status    Status
	Defaulted bool // the respondent let the response window pass
}
