package staking

import (
	"errors"
	"time"
)

// PositionStatus is a stake position's state (stake_positions.status).
//
//	active ──unstake (flexible)──▶ cooldown ──release (cooldown over)──▶ closed
//	active ──unstake (locked, term over)─────────────────────────────▶ closed
//	active, cooldown ──slash──▶ slashed
//
// An active position also records its lock's maturity and changes its
// validator without leaving active; closed and slashed are final.
type PositionStatus string

// Position statuses. The strings are stored; they never change.
const (
	PositionActive   PositionStatus = "active"   // earning rewards; a locked tier until its term ends
	PositionCooldown PositionStatus = "cooldown" // flexible unstake requested: no rewards until released
	PositionClosed   PositionStatus = "closed"   // principal returned to the owner's liquid balance
	PositionSlashed  PositionStatus = "slashed"  // force-unstaked by enforcement, the penalty to the treasury
)

// UnstakeStatus is the state of a flexible position's unstake request
// (unstake_requests.status).
type UnstakeStatus string

// Unstake request statuses.
const (
	UnstakePending   UnstakeStatus = "pending"   // cooldown running
	UnstakeCompleted UnstakeStatus = "completed" // principal released at the cooldown's end
	UnstakeSlashed   UnstakeStatus = "slashed"   // slashed during its cooldown
)

// Op is something that happens to a position.
type Op int

// Ops.
const (
	OpUnstake  Op = iota + 1 // the owner asks for its stake back
	OpRelease                // the cooldown's timer (or its safety net) fires
	OpMature                 // the lock's term ended (lock-expiry timer or safety net)
	OpSlash                  // an enforcement case force-unstakes the agent
	OpDelegate               // the owner changes the position's validator
)

func (o Op) String() string {
	switch o {
	case OpUnstake:
		return "unstake"
	case OpRelease:
		return "release"
	case OpMature:
		return "mature"
	case OpSlash:
		return "slash"
	case OpDelegate:
		return "delegate"
	}
	return "invalid"
}

// PositionState is what the state machine needs to know of a position.
type PositionState struct {
	Status   PositionStatus
	UnlockAt time.Time // the locked tier's term end; zero for the flexible tier
	Matured  bool      // the lock's end was recorded
	// Request is the status of the position's unstake request ("" when it
	// has none) and ReleasesAt the end of its cooldown. Only OpRelease
	// reads them.
	Request    UnstakeStatus
	ReleasesAt time.Time
}

// Effect is what a transition asks the store to do.
type Effect int

// Effects.
const (
	// NoEffect: the op already happened (a retry, a late timer): answer
	// with the position as recorded and write nothing.
	NoEffect Effect = iota
	// StartCooldown: record an unstake request releasing at
	// Step.ReleasesAt; the position stops earning.
	StartCooldown
	// ReturnPrincipal: move the whole principal back to liquid and close
	// the position (completing its request, if any).
	ReturnPrincipal
	// MarkMatured: record the lock's end; no money moves.
	MarkMatured
	// ForceUnstake: the slash: penalty to the treasury, the rest to liquid
	// (settling a running cooldown's request as slashed).
	ForceUnstake
	// ChangeValidator: record the new validator; no money moves.
	ChangeValidator
)

func (e Effect) String() string {
	names := [...]string{"none", "start-cooldown", "return-principal", "mark-matured", "force-unstake", "change-validator"}
	if e < 0 || int(e) >= len(names) {
		return "invalid"
	}
	return names[e]
}

// Step is an allowed transition.
type Step struct {
	To         PositionStatus
	Effect     Effect
	ReleasesAt time.Time // StartCooldown: when the cooldown ends
}

// Refusals: the op is not allowed in the position's state (the store
// reports the first three as FailedPrecondition, ErrNoLock as Invalid).
var (
	ErrLocked          = errors.New("locked until its term ends")
	ErrCooldownRunning = errors.New("the cooldown has not ended")
	ErrNotActive       = errors.New("the position is not active")
	ErrNoLock          = errors.New("the flexible tier has no lock")
)

// Transition is the position state machine: the step op takes from state p
// at now, or why it is refused. Locks and cooldowns bind the owner, not
// enforcement: a slash takes any open position at once. A locked
// position's principal returns only from its term end, a flexible one's
// only from its cooldown's end; an op that already happened answers
// NoEffect, so retries and late timers are harmless.
func Transition(p PositionState, op Op, now time.Time) (Step, error) {
	same := Step{To: p.Status}
	open := p.Status == PositionActive || p.Status == PositionCooldown
	switch op {
	case OpUnstake:
		switch {
		case p.Status == PositionCooldown:
			return same, nil // requested before: the same request
		case !open:
			return same, ErrNotActive
		case p.UnlockAt.IsZero():
			return Step{To: PositionCooldown, Effect: StartCooldown, ReleasesAt: now.Add(Cooldown)}, nil
		case now.Before(p.UnlockAt):
			return same, ErrLocked
		}
		return Step{To: PositionClosed, Effect: ReturnPrincipal}, nil
	case OpRelease:
		switch {
		case p.Status != PositionCooldown || p.Request != UnstakePending:
			return same, nil // released or slashed already
		case now.Before(p.ReleasesAt):
			return same, ErrCooldownRunning
		}
		return Step{To: PositionClosed, Effect: ReturnPrincipal}, nil
	case OpMature:
		switch {
		case p.UnlockAt.IsZero():
			return same, ErrNoLock
		case p.Status != PositionActive || p.Matured:
			return same, nil // recorded before, or unstaked or slashed since
		case now.Before(p.UnlockAt):
			return same, ErrLocked
		}
		return Step{To: PositionActive, Effect: MarkMatured}, nil
	case OpSlash:
		if !open {
			return same, ErrNotActive
		}
		return Step{To: PositionSlashed, Effect: ForceUnstake}, nil
	case OpDelegate:
		if p.Status != PositionActive {
			return same, ErrNotActive
		}
		return Step{To: PositionActive, Effect: ChangeValidator}, nil
	}
	return same, errors.New("staking: unknown op " + op.String())
}
