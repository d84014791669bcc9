package staking

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTransition(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	term := now.Add(24 * time.Hour)
	flex := PositionState{Status: PositionActive}
	locked := PositionState{Status: PositionActive, UnlockAt: term}
	matured := PositionState{Status: PositionActive, UnlockAt: now, Matured: true}
	cooling := PositionState{Status: PositionCooldown, Request: UnstakePending, ReleasesAt: term}
	closed := PositionState{Status: PositionClosed, Request: UnstakeCompleted, ReleasesAt: now}
	slashed := PositionState{Status: PositionSlashed, UnlockAt: term}
	for _, tc := range []struct {
		name string
		p    PositionState
		op   Op
		at   time.Time
		want Step
		err  error
	}{
		{"flexible unstake starts the cooldown", flex, OpUnstake, now, Step{To: PositionCooldown, Effect: StartCooldown, ReleasesAt: now.Add(Cooldown)}, nil},
		{"a second unstake is the same request", cooling, OpUnstake, now, Step{To: PositionCooldown}, nil},
		{"locked before term end", locked, OpUnstake, term.Add(-time.Nanosecond), Step{To: PositionActive}, ErrLocked},
		{"locked at term end returns the principal", locked, OpUnstake, term, Step{To: PositionClosed, Effect: ReturnPrincipal}, nil},
		{"matured or not, the term decides", matured, OpUnstake, now, Step{To: PositionClosed, Effect: ReturnPrincipal}, nil},
		{"closed cannot unstake", closed, OpUnstake, now, Step{To: PositionClosed}, ErrNotActive},
		{"slashed cannot unstake", slashed, OpUnstake, term, Step{To: PositionSlashed}, ErrNotActive},

		{"release before the cooldown ends", cooling, OpRelease, term.Add(-time.Nanosecond), Step{To: PositionCooldown}, ErrCooldownRunning},
		{"release at the cooldown's end", cooling, OpRelease, term, Step{To: PositionClosed, Effect: ReturnPrincipal}, nil},
		{"release twice is a no-op", closed, OpRelease, term, Step{To: PositionClosed}, nil},
		{"release after a slash is a no-op", PositionState{Status: PositionSlashed, Request: UnstakeSlashed, ReleasesAt: now}, OpRelease, term, Step{To: PositionSlashed}, nil},
		{"release of an active position is a no-op", flex, OpRelease, term, Step{To: PositionActive}, nil},

		{"mature before the term", locked, OpMature, now, Step{To: PositionActive}, ErrLocked},
		{"mature at the term", locked, OpMature, term, Step{To: PositionActive, Effect: MarkMatured}, nil},
		{"mature twice is a no-op", matured, OpMature, term, Step{To: PositionActive}, nil},
		{"mature after a slash is a no-op", slashed, OpMature, term, Step{To: PositionSlashed}, nil},
		{"a flexible position has no lock", flex, OpMature, term, Step{To: PositionActive}, ErrNoLock},

		{"slash bypasses the lock", locked, OpSlash, now, Step{To: PositionSlashed, Effect: ForceUnstake}, nil},
		{"slash bypasses the cooldown", cooling, OpSlash, now, Step{To: PositionSlashed, Effect: ForceUnstake}, nil},
		{"a closed position has nothing to slash", closed, OpSlash, now, Step{To: PositionClosed}, ErrNotActive},

		{"delegate an active position", locked, OpDelegate, now, Step{To: PositionActive, Effect: ChangeValidator}, nil},
		{"no delegation while cooling down", cooling, OpDelegate, now, Step{To: PositionCooldown}, ErrNotActive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Transition(tc.p, tc.op, tc.at)
			require.ErrorIs(t, err, tc.err)
			if tc.err == nil {
				require.NoError(t, err)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// allowed is the state machine's diagram, written out on its own: the
// moves each op may make (status before → statuses after).
var allowed = map[Op]map[PositionStatus][]PositionStatus{
	OpUnstake:  {PositionActive: {PositionCooldown, PositionClosed}},
	OpRelease:  {PositionCooldown: {PositionClosed}},
	OpMature:   {PositionActive: {PositionActive}},
	OpSlash:    {PositionActive: {PositionSlashed}, PositionCooldown: {PositionSlashed}},
	OpDelegate: {PositionActive: {PositionActive}},
}

func moveAllowed(op Op, from, to PositionStatus) bool {
	return slices.Contains(allowed[op][from], to)
}

// TestTransitionProperties plays random histories of ops at random times
// against one position (seeded: a failure reproduces) and applies each
// step as the store would, checking what holds on every path.
func TestTransitionProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(16, 5))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ops := []Op{OpUnstake, OpRelease, OpMature, OpSlash, OpDelegate}
	for run := range 2000 {
		p := PositionState{Status: PositionActive}
		if rng.IntN(2) == 0 {
			p.UnlockAt = start.Add(time.Duration(1+rng.IntN(60)) * 24 * time.Hour)
		}
		now := start
		returned, slashes := 0, 0
		for step := range 30 {
			now = now.Add(time.Duration(rng.IntN(10*24)) * time.Hour)
			op := ops[rng.IntN(len(ops))]
			before := p
			got, err := Transition(p, op, now)
			where := func() string { return fmt.Sprintf("%s on %s at step %d", op, before.Status, step) }
			if err != nil {
				require.Equal(t, before.Status, got.To, "a refusal changes nothing: %s (run %d)", where(), run)
				require.Equal(t, NoEffect, got.Effect)
				continue
			}
			if got.Effect == NoEffect {
				require.Equal(t, before.Status, got.To, "no effect, no move: %s (run %d)", where(), run)
			} else {
				require.True(t, moveAllowed(op, before.Status, got.To), "%s → %s not in the diagram (run %d)", where(), got.To, run)
			}
			switch got.Effect {
			case ReturnPrincipal:
				returned++
				// The owner's money comes back only after its term or its
				// cooldown: locks bind the owner.
				if before.Status == PositionActive {
					require.False(t, before.UnlockAt.IsZero(), "a flexible position skipped its cooldown (run %d)", run)
					require.False(t, now.Before(before.UnlockAt), "principal returned before the term (run %d)", run)
				} else {
					require.False(t, now.Before(before.ReleasesAt), "principal returned during the cooldown (run %d)", run)
				}
			case ForceUnstake:
				slashes++
			case StartCooldown:
				require.True(t, before.UnlockAt.IsZero(), "a locked position entered a cooldown (run %d)", run)
				require.Equal(t, now.Add(Cooldown), got.ReleasesAt)
				p.Request, p.ReleasesAt = UnstakePending, got.ReleasesAt
			case MarkMatured:
				require.False(t, now.Before(before.UnlockAt), "matured before the term (run %d)", run)
				p.Matured = true
			}
			if before.Status == PositionCooldown && got.To != PositionCooldown {
				p.Request = map[PositionStatus]UnstakeStatus{PositionClosed: UnstakeCompleted, PositionSlashed: UnstakeSlashed}[got.To]
			}
			p.Status = got.To
			// Idempotent: the same op again, at once, has no effect
			// (delegation aside: each change is a new validator).
			if op != OpDelegate {
				again, _ := Transition(p, op, now)
				require.Equal(t, NoEffect, again.Effect, "%s applied twice (run %d)", where(), run)
			}
		}
		// The money leaves the position at most once, one way or the other.
		require.LessOrEqual(t, returned+slashes, 1, "run %d", run)
		if p.Status == PositionClosed || p.Status == PositionSlashed {
			require.Equal(t, 1, returned+slashes, "run %d ended %s without its money moving", run, p.Status)
		}
	}
}
