package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
)

const did = "did:theprotocol:00000000-0000-0000-0000-000000000001"

func bondEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *activities.BondMaturation) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	var a *activities.BondMaturation
	env.RegisterActivity(a)
	return env, a
}

// countMove mocks a bond-moving activity (ForfeitBond, MatureBond, VoidBond)
// so that every call the workflow makes is counted: an activity that is not
// mocked records nothing, so "never called" must be asserted on a counter.
func countMove(env *testsuite.TestWorkflowEnvironment, activity any) *int {
	n := 0
	env.OnActivity(activity, mock.Anything, mock.Anything).Return(func(context.Context, activities.BondMove) error {
		n++
		return nil
	}).Maybe()
	return &n
}

func TestBondMaturesAfterMinimumAgeWhenCriteriaPass(t *testing.T) {
	env, a := bondEnv(t)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	var checkedAt, maturedAt time.Time
	env.OnActivity(a.CheckBondCriteria, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.BondCheck) (activities.BondCheckResult, error) {
		checkedAt = env.Now()
		return activities.BondCheckResult{Agent: activities.AgentActive, Eligible: true, Transfers: 12, Trust: 6000}, nil
	})
	env.OnActivity(a.MatureBond, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.BondMove) error {
		maturedAt = env.Now()
		require.Equal(t, "bond-mature-"+did, in.IdempotencyKey)
		require.EqualValues(t, 50_0000_0000, in.AmountUnits)
		return nil
	})
	forfeits := countMove(env, a.ForfeitBond)
	env.ExecuteWorkflow(BondMaturation, BondInput{AgentDID: did, AmountUnits: 50_0000_0000, MinAge: 30 * 24 * time.Hour})
	require.NoError(t, env.GetWorkflowError())
	var out string
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Equal(t, BondMatured, out)
	require.False(t, checkedAt.Before(start.Add(30*24*time.Hour)), "no check before the minimum age")
	require.Equal(t, checkedAt, maturedAt)
	require.Zero(t, *forfeits, "a matured bond is never forfeited")
}

func TestBondRechecksUntilEligible(t *testing.T) {
	env, a := bondEnv(t)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	checks := 0
	env.OnActivity(a.CheckBondCriteria, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.BondCheck) (activities.BondCheckResult, error) {
		checks++
		return activities.BondCheckResult{Agent: activities.AgentActive, Eligible: checks == 3, Reason: "not enough transfers"}, nil
	})
	var maturedAt time.Time
	env.OnActivity(a.MatureBond, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.BondMove) error {
		maturedAt = env.Now()
		return nil
	})
	env.ExecuteWorkflow(BondMaturation, BondInput{AgentDID: did, AmountUnits: 1, MinAge: 10 * time.Hour, RecheckEvery: time.Hour})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, 3, checks)
	require.False(t, maturedAt.Before(start.Add(12*time.Hour)))
}

func TestBondForfeitedOnEarlyDeregistration(t *testing.T) {
	env, a := bondEnv(t)
	env.OnActivity(a.ConfirmDeregistered, mock.Anything, did).Return(true, nil).Once()
	env.OnActivity(a.ForfeitBond, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.BondMove) error {
		require.Equal(t, "bond-forfeit-"+did, in.IdempotencyKey)
		return nil
	}).Once()
	checks := 0
	env.OnActivity(a.CheckBondCriteria, mock.Anything, mock.Anything).Return(func(context.Context, activities.BondCheck) (activities.BondCheckResult, error) {
		checks++
		return activities.BondCheckResult{Agent: activities.AgentActive, Eligible: true}, nil
	}).Maybe()
	matures := countMove(env, a.MatureBond)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalBondDeregistered, nil)
	}, 5*24*time.Hour)
	env.ExecuteWorkflow(BondMaturation, BondInput{AgentDID: did, AmountUnits: 7})
	require.NoError(t, env.GetWorkflowError())
	var out string
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Equal(t, BondForfeited, out)
	require.Zero(t, checks, "forfeited before the minimum age: criteria never checked")
	require.Zero(t, *matures, "a forfeited bond never matures")
	env.AssertExpectations(t)
}

func TestBondForfeitedWhileWaitingForCriteria(t *testing.T) {
	env, a := bondEnv(t)
	env.OnActivity(a.CheckBondCriteria, mock.Anything, mock.Anything).Return(activities.BondCheckResult{Agent: activities.AgentActive, Eligible: false, Reason: "trust score below the floor"}, nil)
	env.OnActivity(a.ConfirmDeregistered, mock.Anything, did).Return(true, nil).Once()
	env.OnActivity(a.ForfeitBond, mock.Anything, mock.Anything).Return(nil).Once()
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalBondDeregistered, nil)
	}, 45*24*time.Hour)
	env.ExecuteWorkflow(BondMaturation, BondInput{AgentDID: did, AmountUnits: 7})
	require.NoError(t, env.GetWorkflowError())
	var out string
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Equal(t, BondForfeited, out)
}

func TestBondRejectsInvalidInput(t *testing.T) {
	env, _ := bondEnv(t)
	env.ExecuteWorkflow(BondMaturation, BondInput{AgentDID: did})
	require.ErrorContains(t, env.GetWorkflowError(), "positive amount")
}

func TestBondForfeitedWhenTheCheckFindsTheAgentDeregistered(t *testing.T) {
	env, a := bondEnv(t)
	env.OnActivity(a.CheckBondCriteria, mock.Anything, mock.Anything).Return(activities.BondCheckResult{Agent: activities.AgentDeregistered}, nil)
	env.OnActivity(a.ForfeitBond, mock.Anything, mock.Anything).Return(nil).Once()
	env.ExecuteWorkflow(BondMaturation, BondInput{AgentDID: did, AmountUnits: 7})
	var out string
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Equal(t, BondForfeited, out)
}

func TestBondVoidedWhenTheAgentWasNeverCreated(t *testing.T) {
	env, a := bondEnv(t)
	env.OnActivity(a.CheckBondCriteria, mock.Anything, mock.Anything).Return(activities.BondCheckResult{Agent: activities.AgentMissing}, nil)
	env.OnActivity(a.VoidBond, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BondMove) error {
		require.Equal(t, "dev:1", in.DeveloperAccount)
		require.Equal(t, "bond-void-"+did, in.IdempotencyKey)
		return nil
	}).Once()
	env.ExecuteWorkflow(BondMaturation, BondInput{AgentDID: did, DeveloperAccount: "dev:1", AmountUnits: 7})
	var out string
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Equal(t, BondVoided, out)
}

// A deregistration signal the registry does not confirm (anyone who may
// signal workflows can send one) forfeits nothing: the bond keeps waiting
// for its original deadline and matures as if no signal had come. A later signal the registry
// confirms still forfeits.
func TestBondIgnoresAnUnconfirmedDeregistrationSignal(t *testing.T) {
	for _, later := range []bool{false, true} {
		name := "then matures"
		if later {
			name = "then a confirmed signal forfeits"
		}
		t.Run(name, func(t *testing.T) {
			env, a := bondEnv(t)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			env.SetStartTime(start)
			deregistered := false
			asked := 0
			env.OnActivity(a.ConfirmDeregistered, mock.Anything, did).Return(func(context.Context, string) (bool, error) {
				asked++
				return deregistered, nil
			})
			var checkedAt time.Time
			env.OnActivity(a.CheckBondCriteria, mock.Anything, mock.Anything).Return(func(context.Context, activities.BondCheck) (activities.BondCheckResult, error) {
				if checkedAt.IsZero() {
					checkedAt = env.Now().UTC()
				}
				return activities.BondCheckResult{Agent: activities.AgentActive, Eligible: !later, Reason: "not enough transfers"}, nil
			})
			matures := countMove(env, a.MatureBond)
			forfeits := countMove(env, a.ForfeitBond)
			var afterForged BondStatus
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalBondDeregistered, nil) }, 5*24*time.Hour)
			env.RegisterDelayedCallback(func() {
				v, err := env.QueryWorkflow(QueryBondStatus)
				require.NoError(t, err)
				require.NoError(t, v.Get(&afterForged))
			}, 6*24*time.Hour)
			if later {
				env.RegisterDelayedCallback(func() {
					deregistered = true
					env.SignalWorkflow(SignalBondDeregistered, nil)
				}, 40*24*time.Hour)
			}
			env.ExecuteWorkflow(BondMaturation, BondInput{AgentDID: did, AmountUnits: 7, MinAge: 30 * 24 * time.Hour})
			require.NoError(t, env.GetWorkflowError())
			var out string
			require.NoError(t, env.GetWorkflowResult(&out))
			require.Equal(t, BondLocked, afterForged.State)
			require.Equal(t, ReasonUnconfirmedSignal, afterForged.LastReason)
			require.Equal(t, start.Add(30*24*time.Hour), checkedAt.Truncate(time.Minute), "first check at the original deadline, not 30 days after the signal")
			if !later {
				require.Equal(t, BondMatured, out)
				require.Equal(t, 1, asked)
				require.Equal(t, 1, *matures)
				require.Zero(t, *forfeits, "an unconfirmed signal forfeits nothing")
				return
			}
			require.Equal(t, BondForfeited, out)
			require.Equal(t, 2, asked)
			require.Equal(t, 1, *forfeits)
			require.Zero(t, *matures, "a forfeited bond never matures")
		})
	}
}

// A bond whose history was recorded before the registry check
// (DefaultVersion) keeps forfeiting on the signal alone, as it did.
func TestBondSignalBeforeTheCheckForfeitsAtOnce(t *testing.T) {
	env, a := bondEnv(t)
	env.OnGetVersion(bondSignalConfirmed, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.OnActivity(a.ForfeitBond, mock.Anything, mock.Anything).Return(nil).Once()
	asked := 0
	env.OnActivity(a.ConfirmDeregistered, mock.Anything, mock.Anything).Return(func(context.Context, string) (bool, error) {
		asked++
		return true, nil
	}).Maybe()
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalBondDeregistered, nil) }, time.Hour)
	env.ExecuteWorkflow(BondMaturation, BondInput{AgentDID: did, AmountUnits: 7})
	var out string
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Equal(t, BondForfeited, out)
	require.Zero(t, asked, "the old version forfeits without asking the registry")
	env.AssertExpectations(t)
}
