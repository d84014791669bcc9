// Package xferstate is the vocabulary of a cross-registry transfer (SPEC
// §6.1) and the rules that move it from one status to the next, as pure
// functions: no I/O, no clock of its own, standard library only.
//
// Two registries take part in a transfer. The coordinator (the sender's
// TEG) reserves the amount with a hold, decides commit or abort and
// records the decision (Decide); the participant (the receiver's TEG)
// prepares, then credits or drops the transfer. The settlement workflow
// turns the participant's prepare answer into a proposal (Propose); a
// participant left with an open prepare asks the coordinator and applies
// its answer (Resolve).
//
// The statuses are stored in the TEG's tables (xfers.status,
// xfer_prepares.status), written into committed workflow histories and
// sent between registries, so their strings never change. The SQL in
// queries/teg and the CHECK constraints of db/migrations/teg spell the
// same values; a test of db/ledgerstore compares them with this list.
package xferstate

import "time"

// Status is a cross-registry transfer's status on either side, or a
// participant's answer about it.
type Status string

// Coordinator statuses (xfers.status).
const (
	Pending    Status = "pending"    // hold placed, no decision yet
	Committing Status = "committing" // decided commit: funds in transit, target not yet credited
	Committed  Status = "committed"  // the target credited the receiver (also a prepare's status)
	// Aborting: decided abort. The decision log already answers abort, but
	// the sender's hold still reserves the funds until the target
	// acknowledged the abort.
	Aborting Status = "aborting"
	Aborted  Status = "aborted" // abort decided and the hold released (also a prepare's status)
)

// Participant statuses (xfer_prepares.status) and answers. Committed and
// Aborted above are shared by both sides.
const (
	Prepared Status = "prepared" // validated and recorded; nothing moved yet
	Rejected Status = "rejected" // refused at prepare (unknown receiver, bad amount…)
	Unknown  Status = "unknown"  // no record of the transfer: presumed abort
)

// CoordinatorStatuses are the values xfers.status may hold.
func CoordinatorStatuses() []Status {
	return []Status{Pending, Committing, Committed, Aborting, Aborted}
}

// PrepareStatuses are the values xfer_prepares.status may hold.
func PrepareStatuses() []Status {
	return []Status{Prepared, Rejected, Committed, Aborted}
}

// Reasons the rules give for an abort they impose.
const (
	ReasonHoldExpired  = "the sender's hold expired before the decision"
	ReasonNotPrepared  = "the target registry could not prepare the transfer"
	reasonRejectedFrom = "rejected by the target registry: "
)

// Propose turns the target's answer to a prepare into the coordinator's
// proposal for one transfer: commit only when the target answered
// Prepared. answered is false when the prepare call failed or its answer
// left the transfer out (an unreachable target may still have recorded
// it: the abort that follows covers that).
func Propose(answered bool, vote Status, voteReason string) (commit bool, reason string) {
	switch {
	case !answered:
		return false, ReasonNotPrepared
	case vote == Prepared:
		return true, ""
	default:
		return false, reasonRejectedFrom + voteReason
	}
}

// Proposal is what the settlement asks the coordinator to record for one
// transfer.
type Proposal struct {
	Commit bool
	Reason string // why it aborts
	// KeepHoldOnAbort: an abort leaves the hold active (Aborting) until
	// the target acknowledged it (AckAbort); false releases it at once
	// (the behaviour of settlements started before the acknowledgement
	// step existed).
	KeepHoldOnAbort bool
}

// Hold is what the decision needs to know of the sender's hold.
type Hold struct {
	Active    bool // not yet posted, voided or expired
	ExpiresAt time.Time
}

// usable reports whether the hold can still be posted at now.
func (h Hold) usable(now time.Time) bool { return h.Active && now.Before(h.ExpiresAt) }

// HoldAction is what a decision does with the sender's hold.
type HoldAction int

// Hold actions.
const (
	KeepHold HoldAction = iota // leave it as it is
	PostHold                   // post it to the transit account (the debit)
	VoidHold                   // void it: the sender's funds are released
)

func (a HoldAction) String() string {
	switch a {
	case KeepHold:
		return "keep"
	case PostHold:
		return "post"
	case VoidHold:
		return "void"
	}
	return "invalid"
}

// Decision is a rule's verdict for one transfer.
type Decision struct {
	Status Status     // the status after the decision
	Reason string     // why it aborted ("" for a commit, and when unchanged)
	Hold   HoldAction // what to do with the sender's hold
	// Changed is false when the transfer was not in a state the rule
	// moves: nothing is to be written and its recorded reason stands.
	Changed bool
}

// Decide is the coordinator's decision rule for a transfer in status
// current, given the settlement's proposal, the sender's hold and the
// time of the decision:
//
//   - a transfer already decided (any status but Pending) keeps its
//     decision, so repeating a decision is harmless;
//   - a commit needs a hold that is still active and not yet expired at
//     now; otherwise the transfer aborts (ReasonHoldExpired): an expired
//     reservation never becomes a debit;
//   - a commit posts the hold and moves to Committing;
//   - an abort moves to Aborting and keeps the hold when the proposal
//     asks for it, else to Aborted, voiding the hold if still active.
func Decide(current Status, p Proposal, h Hold, now time.Time) Decision {
	if current != Pending {
		return Decision{Status: current}
	}
	commit, reason := p.Commit, p.Reason
	if commit && !h.usable(now) {
		commit, reason = false, ReasonHoldExpired
	}
	switch {
	case commit:
		return Decision{Status: Committing, Hold: PostHold, Changed: true}
	case p.KeepHoldOnAbort:
		return Decision{Status: Aborting, Reason: reason, Changed: true}
	case h.Active:
		return Decision{Status: Aborted, Reason: reason, Hold: VoidHold, Changed: true}
	default:
		return Decision{Status: Aborted, Reason: reason, Changed: true}
	}
}

// AckAbort is the rule once the target acknowledged an abort: an Aborting
// transfer becomes Aborted and its hold, if still active, is voided (a
// hold no longer active expired before the decision: nothing to release).
// Any other status is left alone.
func AckAbort(current Status, holdActive bool) Decision {
	if current != Aborting {
		return Decision{Status: current}
	}
	d := Decision{Status: Aborted, Changed: true}
	if holdActive {
		d.Hold = VoidHold
	}
	return d
}

// ConfirmCredit is the rule once the target credited the receiver: a
// Committing transfer becomes Committed. Any other status is left alone.
func ConfirmCredit(current Status) Decision {
	if current != Committing {
		return Decision{Status: current}
	}
	return Decision{Status: Committed, Changed: true}
}

// ForPeer is the decision a coordinator reports to the participant that
// asks about a transfer: Aborting is reported as Aborted (that the hold
// waits for the participant's acknowledgement is the coordinator's
// business); every other status as it is.
func ForPeer(s Status) Status {
	if s == Aborting {
		return Aborted
	}
	return s
}

// Resolution is what a participant does with an open prepare.
type Resolution int

// Resolutions.
const (
	Wait          Resolution = iota // no decision yet: ask again later
	CommitPrepare                   // credit the receiver
	AbortPrepare                    // drop the prepare
)

func (r Resolution) String() string {
	switch r {
	case Wait:
		return "wait"
	case CommitPrepare:
		return "commit"
	case AbortPrepare:
		return "abort"
	}
	return "invalid"
}

// Resolve maps the coordinator's answer about an open prepare to the
// participant's action: commit once the coordinator decided commit
// (Committing or Committed), abort once it decided abort or has no record
// of the transfer (presumed abort), wait otherwise (Pending: its
// settlement is still running).
func Resolve(coordinator Status) Resolution {
	switch coordinator {
	case Committing, Committed:
		return CommitPrepare
	case Aborting, Aborted, Unknown:
		return AbortPrepare
	}
	return Wait
}
