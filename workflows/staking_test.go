package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// memStaking is an in-memory StakingLedger with the ledger's contract:
// a page pays each (date, position) at most once. It records every call
// rather than only the resulting state, so a test can tell a position the
// workflow never reached from one it asked for twice.
type memStaking struct {
	mu        sync.Mutex
	positions int64 // ids 1..positions, 100 units of reward each
	// offered counts, per date and position, every PayRewardPage call whose
	// page covered the position (paid or already paid).
	offered map[string]map[int64]int
	// paid counts the credits booked per date and position. The ledger's
	// unique (date, position) key lets a credit through only when none is
	// booked yet; the count is never clamped afterwards.
	paid     map[string]map[int64]int
	runs     map[string]bool
	released map[int64]int
	matured  map[int64]int
	// lockSweeps counts MatureDueLocks calls (the run's safety net).
	lockSweeps int
	// crashAfterCommit makes the nth PayRewardPage call commit and then
	// fail, as if the worker died before reporting the result.
	crashAfterCommit int
	calls            int
	// crashes counts the injected failures that actually fired.
	crashes int
}

func newMemStaking(positions int64) *memStaking {
	return &memStaking{positions: positions, offered: map[string]map[int64]int{}, paid: map[string]map[int64]int{}, runs: map[string]bool{}, released: map[int64]int{}, matured: map[int64]int{}}
}

func (m *memStaking) StartRewardRun(_ context.Context, date string, cutoff time.Time, _ staking.Curve) (staking.RewardRun, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs[date] = true
	if m.paid[date] == nil {
		m.paid[date] = map[int64]int{}
		m.offered[date] = map[int64]int{}
	}
	return staking.RewardRun{Date: date, Cutoff: cutoff, PayNum: 1, PayDen: 1, DueUnits: 100 * m.positions}, nil
}

func (m *memStaking) PayRewardPage(_ context.Context, date string, after int64, limit int) (staking.RewardPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	out := staking.RewardPage{LastID: after}
	for id := after + 1; id <= m.positions && out.Examined < limit; id++ {
		out.Examined++
		out.LastID = id
		m.offered[date][id]++
		if m.paid[date][id] == 0 { // the ledger's unique key
			m.paid[date][id]++
			out.Paid++
			out.PaidUnits += 100
		}
	}
	out.Done = out.Examined < limit
	if m.calls == m.crashAfterCommit {
		m.crashes++
		return staking.RewardPage{}, errors.New("worker lost after commit")
	}
	return out, nil
}

func (m *memStaking) FinishRewardRun(_ context.Context, date string) (staking.RewardRun, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Summed from the credits booked, so a double credit would show.
	var n int64
	for _, c := range m.paid[date] {
		n += int64(c)
	}
	return staking.RewardRun{Date: date, PaidPositions: n, PaidUnits: 100 * n, PayNum: 1, PayDen: 1, Completed: true}, nil
}

func (m *memStaking) ReleaseUnstake(_ context.Context, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.released[id]++
	return nil
}

func (m *memStaking) CompleteDueUnstakes(context.Context, int) (int, error) { return 0, nil }

func (m *memStaking) MatureLock(_ context.Context, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.matured[id]++
	return nil
}

func (m *memStaking) MatureDueLocks(context.Context, int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lockSweeps++
	return 0, nil
}

func stakingEnv(ledger *memStaking) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Staking{Ledger: ledger, Curve: staking.DefaultCurve})
	env.RegisterWorkflowWithOptions(StakingRewardRun, workflow.RegisterOptions{Name: StakingRewardRunName})
	return env
}

// A flexible unstake's funds are released exactly seven days after the
// request, by a durable timer.
func TestUnstakeCooldownReleasesExactlySevenDaysLater(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Staking
	env.RegisterActivity(a)
	start := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	env.SetStartTime(start)
	var releasedAt time.Time
	env.OnActivity(a.ReleaseUnstake, mock.Anything, int64(42)).Return(func(context.Context, int64) error {
		releasedAt = env.Now()
		return nil
	}).Once()
	env.ExecuteWorkflow(StakingUnstakeCooldown, UnstakeCooldownInput{PositionID: 42, ReleaseAt: start.Add(staking.Cooldown)})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, start.Add(7*24*time.Hour), releasedAt.UTC())
	env.AssertExpectations(t)
}

// A 30-day position's lock expiry is recorded exactly at its term end, by
// a durable timer; started after the term (a late start), it records it at
// once.
func TestLockExpiryMaturesAtTermEnd(t *testing.T) {
	start := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	unlock := start.AddDate(0, 0, 30)
	for _, c := range []struct {
		name  string
		start time.Time
		want  time.Time
	}{
		{"on time", start, unlock},
		{"started late", unlock.Add(time.Hour), unlock.Add(time.Hour)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			s.SetLogger(quietLogger)
			env := s.NewTestWorkflowEnvironment()
			var a *activities.Staking
			env.RegisterActivity(a)
			env.SetStartTime(c.start)
			var maturedAt time.Time
			env.OnActivity(a.MatureLock, mock.Anything, int64(7)).Return(func(context.Context, int64) error {
				maturedAt = env.Now()
				return nil
			}).Once()
			env.ExecuteWorkflow(StakingLockExpiry, LockExpiryInput{PositionID: 7, UnlockAt: unlock})
			require.NoError(t, env.GetWorkflowError())
			require.Equal(t, c.want, maturedAt.UTC())
			env.AssertExpectations(t)
		})
	}
}

// A run over 25 positions in pages of 4 with 3 pages per run continues as
// new with its cursor and, chained, pays every position once.
func TestRewardRunPagesAndContinuesAsNew(t *testing.T) {
	ledger := newMemStaking(25)
	in := RewardRunInput{Date: "2026-03-02", Cutoff: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), PageSize: 4, PagesPerRun: 3}
	var res RewardRunResult
	chained := 0
	for {
		env := stakingEnv(ledger)
		env.ExecuteWorkflow(StakingRewardRun, in)
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			chained++
			require.NoError(t, converterDecode(can, &in))
			require.True(t, in.Started, "the next run does not restart the day")
			continue
		}
		require.NoError(t, err)
		require.NoError(t, env.GetWorkflowResult(&res))
		break
	}
	require.Equal(t, 2, chained, "7 pages at 3 per run: two continue-as-new")
	require.EqualValues(t, 25, res.PaidPositions)
	require.Equal(t, 7, res.Pages)
	require.Equal(t, 7, ledger.calls, "PayRewardPage calls")
	for id := int64(1); id <= 25; id++ {
		require.Equal(t, 1, ledger.offered["2026-03-02"][id], "position %d asked for", id)
		require.Equal(t, 1, ledger.paid["2026-03-02"][id], "position %d credited", id)
	}
}

// The same date run twice, and a run whose page committed but whose
// worker died before reporting it (the activity is retried from the same
// cursor), pay every position exactly once.
func TestRewardRunTwiceAndAfterCrashPaysOnce(t *testing.T) {
	ledger := newMemStaking(10)
	ledger.crashAfterCommit = 2
	in := RewardRunInput{Date: "2026-03-03", Cutoff: time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC), PageSize: 3}
	for i := 0; i < 2; i++ {
		env := stakingEnv(ledger)
		env.ExecuteWorkflow(StakingRewardRun, in)
		require.NoError(t, env.GetWorkflowError())
		var res RewardRunResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.EqualValues(t, 10, res.PaidPositions)
		if i == 0 {
			require.Equal(t, 1, ledger.crashes, "the page lost after commit was injected")
		}
	}
	require.Equal(t, 1, ledger.crashes)
	// Pages of 3 over 10 positions: 4 pages a run, plus the crashed
	// page's retry in the first run.
	require.Equal(t, 9, ledger.calls, "PayRewardPage calls")
	for id := int64(1); id <= 10; id++ {
		want := 2 // once per run
		if id >= 4 && id <= 6 {
			want = 3 // the crashed page is retried from the same cursor
		}
		require.Equal(t, want, ledger.offered["2026-03-03"][id], "position %d asked for", id)
		require.Equal(t, 1, ledger.paid["2026-03-03"][id], "position %d credited", id)
	}
	require.Equal(t, 2, ledger.lockSweeps, "each run sweeps overdue lock expiries")
}

func TestRewardDayUsesTheScheduledDate(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(StakingRewardRun, workflow.RegisterOptions{Name: StakingRewardRunName})
	start := time.Date(2026, 3, 4, 0, 0, 3, 0, time.UTC)
	env.SetStartTime(start)
	var got RewardRunInput
	env.OnWorkflow(StakingRewardRunName, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in RewardRunInput) (RewardRunResult, error) {
		got = in
		return RewardRunResult{Date: in.Date, PaidPositions: 1}, nil
	})
	env.ExecuteWorkflow(StakingRewardDay, RewardDayInput{Registry: "alpha-main"})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, "2026-03-04", got.Date)
	require.True(t, got.Cutoff.Equal(start))
}

// converterDecode decodes a continue-as-new error's single argument.
func converterDecode(can *workflow.ContinueAsNewError, out *RewardRunInput) error {
	return converter.GetDefaultDataConverter().FromPayloads(can.Input, out)
}

// A catch-up action (the schedule missed midnight of 4 March and starts it
// at 03:00 on the 5th) pays the 4th: the date and cutoff come from the
// schedule's nominal time, not from when the workflow started.
func TestRewardDayCatchUpPaysTheMissedDate(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(StakingRewardRun, workflow.RegisterOptions{Name: StakingRewardRunName})
	env.SetStartTime(time.Date(2026, 3, 5, 3, 0, 0, 0, time.UTC))
	nominal := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	require.NoError(t, env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(scheduledStartTime.ValueSet(nominal))))
	var got RewardRunInput
	env.OnWorkflow(StakingRewardRunName, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in RewardRunInput) (RewardRunResult, error) {
		got = in
		return RewardRunResult{Date: in.Date}, nil
	})
	env.ExecuteWorkflow(StakingRewardDay, RewardDayInput{Registry: "alpha-main"})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, "2026-03-04", got.Date)
	require.True(t, got.Cutoff.Equal(nominal))
}
