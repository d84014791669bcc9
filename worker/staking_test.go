package worker_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/staking"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

const avt = int64(100_000_000)

// seedPositions writes n active positions of 100 AVT straight into a TEG
// database (no API: this is fixture data for runs over many positions),
// owned by n/10 agents (at least 1), cycling through the five tiers, every
// other one auto-compounding and every tenth delegated to a validator with
// 5 % commission, all created a day ago. Balances and issuance are set so
// the ledger's supply invariant holds.
func seedPositions(tb testing.TB, ctx context.Context, pool *pgxpool.Pool, n int) {
	tb.Helper()
	agents := max(n/10, 1)
	const agentFmt = `'did:theprotocol:00000000-0000-4000-8000-' || lpad(%s::text, 12, '0')`
	owner := fmt.Sprintf(agentFmt, fmt.Sprintf("((g - 1) %% %d + 1)", agents))
	validator := fmt.Sprintf(agentFmt, "999999999999")
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO accounts (id, kind, created_at) SELECT %s, 'agent', now() FROM generate_series(1, %d) g`, fmt.Sprintf(agentFmt, "g"), agents),
		fmt.Sprintf(`INSERT INTO accounts (id, kind, created_at) VALUES (%s, 'agent', now())`, validator),
		`INSERT INTO balances (account_id, bucket, units, updated_at)
			SELECT a.id, b.bucket, 0, now() FROM accounts a, unnest(ARRAY['liquid', 'staked']) AS b(bucket) WHERE a.kind = 'agent'`,
		fmt.Sprintf(`INSERT INTO staking_validators (agent_did, commission_bps, accepting, created_at, updated_at) VALUES (%s, 500, true, now(), now())`, validator),
		fmt.Sprintf(`INSERT INTO stake_positions (owner, tier, principal_units, staked_units, auto_compound, validator, status, unlock_at, client_key, created_at, updated_at)
			SELECT %s, (ARRAY['flexible', '30d', '90d', '180d', '365d'])[g %% 5 + 1], %d, %d, g %% 2 = 0,
				CASE WHEN g %% 10 = 0 THEN %s END, 'active',
				CASE WHEN g %% 5 = 0 THEN NULL ELSE now() + interval '30 days' END,
				'seed-' || g, now() - interval '1 day', now() - interval '1 day'
			FROM generate_series(1, %d) g`, owner, 100*avt, 100*avt, validator, n),
		`UPDATE balances b SET units = s.total FROM (SELECT owner, sum(principal_units) AS total FROM stake_positions GROUP BY owner) s
			WHERE b.account_id = s.owner AND b.bucket = 'staked'`,
		`UPDATE balances SET units = units - (SELECT sum(principal_units) FROM stake_positions) WHERE account_id = 'issuance'`,
		`ANALYZE`,
	} {
		_, err := pool.Exec(ctx, q)
		require.NoError(tb, err, q)
	}
}

// slowLedger delays each reward page so a test can stop the worker
// mid-run.
type slowLedger struct {
	activities.StakingLedger
	delay time.Duration
	pages atomic.Int64
}

func (s *slowLedger) PayRewardPage(ctx context.Context, date string, after int64, limit int) (staking.RewardPage, error) {
	p, err := s.StakingLedger.PayRewardPage(ctx, date, after, limit)
	s.pages.Add(1)
	time.Sleep(s.delay)
	return p, err
}

func startStakingWorker(tb testing.TB, c client.Client, queue string, ledger activities.StakingLedger) sdkworker.Worker {
	tb.Helper()
	w := sdkworker.New(c, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(workflows.StakingRewardRun, workflow.RegisterOptions{Name: workflows.StakingRewardRunName})
	w.RegisterActivity(&activities.Staking{Ledger: ledger, Curve: staking.DefaultCurve})
	require.NoError(tb, w.Start())
	return w
}

func newStakingLedger(tb testing.TB, ctx context.Context, positions int) (*ledgerstore.Store, *pgxpool.Pool) {
	tb.Helper()
	tdb := testenv.NewDB(tb, db.RoleTEG)
	s := ledgerstore.New(tdb.Pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true})
	_, err := s.Genesis(ctx, 1_000_000_000*avt)
	require.NoError(tb, err)
	seedPositions(tb, ctx, tdb.Pool, positions)
	return s, tdb.Pool
}

func count(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	tb.Helper()
	var n int64
	require.NoError(tb, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// A reward run whose worker is stopped mid-run and resumed by a new worker
// pays every position exactly once, and the treasury paid exactly what the
// positions received. The stop is the SDK's graceful Worker.Stop, not a
// process kill: pollers end and in-flight activities are cancelled, so the
// run resumes from what the first worker reported. A page that commits and
// whose result is lost, as after a real crash, is covered by the workflow
// test with an injected failure after commit.
func TestRewardRunSurvivesWorkerStopMidRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const positions = 3000
	store, pool := newStakingLedger(t, ctx, positions)
	tc := testenv.NewTemporal(t)
	treasury := count(t, pool, `SELECT units FROM balances WHERE account_id = 'treasury' AND bucket = 'liquid'`)

	slow := &slowLedger{StakingLedger: store, delay: 300 * time.Millisecond}
	w1 := startStakingWorker(t, tc.Client, tc.TaskQueue, slow)
	// The ledger starts a run only for a day that has begun, with a cutoff
	// inside it: today's, at the positions' creation.
	cutoff := time.Now()
	date := cutoff.UTC().Format(staking.DateLayout)
	id := workflows.RewardRunWorkflowID("stoptest", date)
	_, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tc.TaskQueue}, workflows.StakingRewardRunName,
		workflows.RewardRunInput{Date: date, Cutoff: cutoff, PageSize: 250, PagesPerRun: 4})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return slow.pages.Load() >= 3 }, 30*time.Second, 10*time.Millisecond)
	w1.Stop() // graceful: the first worker leaves mid-run
	paidAtStop := count(t, pool, `SELECT count(*) FROM staking_rewards`)
	require.Less(t, paidAtStop, int64(positions), "stopped mid-run")

	w2 := startStakingWorker(t, tc.Client, tc.TaskQueue, store)
	t.Cleanup(w2.Stop)
	var res workflows.RewardRunResult
	require.NoError(t, tc.Client.GetWorkflow(ctx, id, "").Get(ctx, &res))
	require.EqualValues(t, positions, res.PaidPositions)
	require.EqualValues(t, positions, count(t, pool, `SELECT count(*) FROM staking_rewards WHERE run_date = $1`, date))
	require.EqualValues(t, positions, count(t, pool, `SELECT count(DISTINCT idempotency_key) FROM outbox WHERE event_type = 'StakingRewardPaid'`))
	require.EqualValues(t, positions, count(t, pool, `SELECT count(*) FROM outbox WHERE event_type = 'StakingRewardPaid'`))
	paid := count(t, pool, `SELECT sum(reward_units) FROM staking_rewards`)
	require.Equal(t, res.PaidUnits, paid)
	require.Equal(t, treasury-paid, count(t, pool, `SELECT units FROM balances WHERE account_id = 'treasury' AND bucket = 'liquid'`))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM ledger_journal j WHERE (SELECT sum(d::numeric) FROM unnest(j.deltas) d) <> 0`))
	// Seeded staked buckets have no journal; every liquid bucket does.
	require.Zero(t, count(t, pool, `
		WITH legs AS (SELECT u.a, u.b, sum(u.d::numeric) AS total FROM ledger_journal j, unnest(j.accounts, j.buckets, j.deltas) AS u(a, b, d) GROUP BY 1, 2)
		SELECT count(*) FROM balances bl LEFT JOIN legs ON legs.a = bl.account_id AND legs.b = bl.bucket
		WHERE bl.bucket = 'liquid' AND bl.account_id <> 'issuance' AND bl.units <> coalesce(legs.total, 0)`), "liquid balances == Σ journal legs")
}

// BenchmarkStakingRewardRun pays one day over STAKING_BENCH_POSITIONS
// positions (default 1,000,000) seeded directly in the database, through
// the StakingRewardRun workflow on the Temporal dev server, and reports
// the wall time, positions/s and the longest history of the continue-as-new
// chain:
//
//	make bench-staking
//	(go test ./worker -run '^$' -bench StakingRewardRun -benchtime 1x -timeout 60m)
func BenchmarkStakingRewardRun(b *testing.B) {
	ctx := context.Background()
	positions := envInt("STAKING_BENCH_POSITIONS", 1_000_000)
	pageSize := envInt("STAKING_BENCH_PAGE", workflows.DefaultRewardPageSize)
	perRun := envInt("STAKING_BENCH_PAGES_PER_RUN", 50)
	seedStart := time.Now()
	store, pool := newStakingLedger(b, ctx, positions)
	b.Logf("seeded %d positions in %s", positions, time.Since(seedStart).Round(time.Millisecond))
	tc := testenv.NewTemporal(b)
	w := startStakingWorker(b, tc.Client, tc.TaskQueue, store)
	defer w.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 {
			// A day is paid once and only today's run pays positions
			// seeded today: one run per seeded ledger.
			b.Fatal("run with -benchtime 1x")
		}
		cutoff := time.Now()
		date := cutoff.UTC().Format(staking.DateLayout)
		id := workflows.RewardRunWorkflowID("bench-"+tc.TaskQueue, date)
		start := time.Now()
		run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tc.TaskQueue}, workflows.StakingRewardRunName,
			workflows.RewardRunInput{Date: date, Cutoff: cutoff, PageSize: pageSize, PagesPerRun: perRun})
		require.NoError(b, err)
		var res workflows.RewardRunResult
		require.NoError(b, tc.Client.GetWorkflow(ctx, id, "").Get(ctx, &res))
		wall := time.Since(start)
		require.EqualValues(b, positions, res.PaidPositions)
		runs, longest := historyChain(b, tc.Client, id, run.GetRunID())
		b.ReportMetric(wall.Seconds(), "s/run")
		b.ReportMetric(float64(positions)/wall.Seconds(), "positions/s")
		b.ReportMetric(float64(longest), "max-history-events")
		b.ReportMetric(float64(runs), "runs-in-chain")
		b.Logf("date %s: %d positions, %d pages, %s wall, %.0f positions/s, %d runs (continue-as-new every %d pages), longest history %d events, paid %d units",
			date, res.PaidPositions, res.Pages, wall.Round(time.Millisecond), float64(positions)/wall.Seconds(), runs, perRun, longest, res.PaidUnits)
		require.Less(b, longest, 10_240, "history under Temporal's warning limit")
	}
	b.StopTimer()
	require.EqualValues(b, int64(positions)*int64(b.N), count(b, pool, `SELECT count(*) FROM staking_rewards`))
}

// historyChain walks a continue-as-new chain from its first run and
// returns the number of runs and the longest history.
func historyChain(tb testing.TB, c client.Client, id, runID string) (runs, longest int) {
	tb.Helper()
	ctx := context.Background()
	for runID != "" {
		runs++
		it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		n, next := 0, ""
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(tb, err)
			n++
			if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
		}
		longest = max(longest, n)
		runID = next
	}
	return runs, longest
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestRecordStakingHistories records the staking workflows' histories for
// TestReplayCommittedHistories (only with -update): a reward run over 30
// positions in pages of 10 that continues as new after 2 pages (its first
// run), a whole run to its end (with the unstake and lock-expiry safety
// nets, the latter behind workflow.GetVersion "staking-lock-safety-net"),
// the scheduled-day trigger with its child, a cooldown and a lock expiry.
func TestRecordStakingHistories(t *testing.T) {
	if !*update {
		t.Skip("records histories only with -update")
	}
	ctx := context.Background()
	store, _ := newStakingLedger(t, ctx, 30)
	tc := testenv.NewTemporal(t)
	w := sdkworker.New(tc.Client, tc.TaskQueue, sdkworker.Options{})
	workflows.StakingFamily.RegisterWorkflows(w)
	w.RegisterActivity(&activities.Staking{Ledger: releaseOK{store}, Curve: staking.DefaultCurve})
	require.NoError(t, w.Start())
	defer w.Stop()
	suffix := time.Now().Format("150405")
	record := func(name, id, wf string, arg any) {
		run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tc.TaskQueue}, wf, arg)
		require.NoError(t, err)
		require.NoError(t, tc.Client.GetWorkflow(ctx, id, "").Get(ctx, nil))
		writeHistory(t, tc.Client, id, run.GetRunID(), name)
	}
	// Runs only for days that have begun, within the catch-up window.
	today := time.Now()
	yesterday := today.Add(-24 * time.Hour)
	record("staking-reward-run", "replay-staking-run-"+suffix, workflows.StakingRewardRunName,
		workflows.RewardRunInput{Date: yesterday.UTC().Format(staking.DateLayout), Cutoff: yesterday, PageSize: 10, PagesPerRun: 2})
	record("staking-reward-run-complete", "replay-staking-run-complete-"+suffix, workflows.StakingRewardRunName,
		workflows.RewardRunInput{Date: today.UTC().Format(staking.DateLayout), Cutoff: today, PageSize: 10})
	record("staking-reward-day", "replay-staking-day-"+suffix, workflows.StakingRewardDayName, workflows.RewardDayInput{Registry: "replay-" + suffix, PageSize: 10})
	record("staking-unstake-cooldown", "replay-staking-cooldown-"+suffix, workflows.UnstakeCooldownName,
		workflows.UnstakeCooldownInput{PositionID: 999_999_999, ReleaseAt: time.Now().Add(time.Second)})
	record("staking-lock-expiry", "replay-staking-lock-"+suffix, workflows.LockExpiryName,
		workflows.LockExpiryInput{PositionID: 999_999_998, UnlockAt: time.Now().Add(time.Second)})
}

// releaseOK answers every unstake release and lock expiry (the recorded
// cooldown and lock expiry name no real position).
type releaseOK struct{ activities.StakingLedger }

func (releaseOK) ReleaseUnstake(context.Context, int64) error { return nil }
func (releaseOK) MatureLock(context.Context, int64) error     { return nil }

// The cooldown workflow on the real ledger, under Temporal's time-skipping
// test clock (the ledger reads the same clock): a flexible unstake
// requested at t0 returns the funds to liquid at exactly t0 + 7 days, and
// not a moment before (the ledger itself refuses an early release).
func TestCooldownReleasesFundsSevenDaysLaterOnTheLedger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	t0 := time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC)
	env.SetStartTime(t0)
	tdb := testenv.NewDB(t, db.RoleTEG)
	store := ledgerstore.New(tdb.Pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true, Now: env.Now})
	_, err := store.Genesis(ctx, 1000*avt)
	require.NoError(t, err)
	agent := "did:theprotocol:00000000-0000-4000-8000-00000000c001"
	_, _, err = store.OpenAccount(ctx, agent, "agent")
	require.NoError(t, err)
	_, err = store.Grant(ctx, ledgerstore.SupplyRequest{To: agent, AmountUnits: 50 * avt, Reason: "t", Actor: "admin:t", IdempotencyKey: "g"})
	require.NoError(t, err)
	p, err := store.Stake(ctx, ledgerstore.StakeRequest{Owner: agent, Tier: "flexible", AmountUnits: 50 * avt, IdempotencyKey: "s"})
	require.NoError(t, err)
	res, err := store.Unstake(ctx, agent, p.ID)
	require.NoError(t, err)
	require.Equal(t, t0.Add(7*24*time.Hour), res.Request.ReleasesAt)

	liquid := func() int64 {
		b, err := store.Balances(ctx, agent)
		require.NoError(t, err)
		return b.AvailableUnits
	}
	env.RegisterActivity(&activities.Staking{Ledger: store, Curve: staking.DefaultCurve})
	checked := 0
	env.RegisterDelayedCallback(func() {
		require.Zero(t, liquid(), "still cooling down one second before")
		checked++
	}, 7*24*time.Hour-time.Second)
	env.ExecuteWorkflow(workflows.StakingUnstakeCooldown, workflows.UnstakeCooldownInput{PositionID: p.ID, ReleaseAt: res.Request.ReleasesAt})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, 1, checked, "the one-second-before check ran inside the timer")
	require.Equal(t, 50*avt, liquid(), "released")
	reqs, err := store.UnstakeRequests(ctx, agent, 0, 10)
	require.NoError(t, err)
	require.Equal(t, staking.UnstakeCompleted, reqs[0].Status)
	require.Equal(t, t0.Add(7*24*time.Hour), reqs[0].CompletedAt.UTC(), "exactly seven days later")
}

// A 30-day stake on the real ledger under Temporal's time-skipping test
// clock (the ledger reads the same clock), with its lock-expiry workflow:
// an unstake on day 29 and one second before the term end are refused with
// the locked-tier error and write nothing; at day 30 the workflow records
// the maturity (matured_at, one StakeMatured event) and the unstake then
// succeeds at once, returning the principal to liquid.
func TestLockedStakeWithdrawableFromDay30OnTheLedger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	t0 := time.Date(2026, 9, 1, 15, 45, 0, 0, time.UTC)
	env.SetStartTime(t0)
	tdb := testenv.NewDB(t, db.RoleTEG)
	store := ledgerstore.New(tdb.Pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true, Now: env.Now})
	_, err := store.Genesis(ctx, 1000*avt)
	require.NoError(t, err)
	agent := "did:theprotocol:00000000-0000-4000-8000-00000000c030"
	_, _, err = store.OpenAccount(ctx, agent, "agent")
	require.NoError(t, err)
	_, err = store.Grant(ctx, ledgerstore.SupplyRequest{To: agent, AmountUnits: 40 * avt, Reason: "t", Actor: "admin:t", IdempotencyKey: "g"})
	require.NoError(t, err)
	p, err := store.Stake(ctx, ledgerstore.StakeRequest{Owner: agent, Tier: "30d", AmountUnits: 40 * avt, IdempotencyKey: "s"})
	require.NoError(t, err)
	day30 := t0.AddDate(0, 0, 30)
	require.Equal(t, day30, *p.UnlockAt)

	liquid := func() int64 {
		b, err := store.Balances(ctx, agent)
		require.NoError(t, err)
		return b.AvailableUnits
	}
	outbox := func() int64 { return count(t, tdb.Pool, `SELECT count(*) FROM outbox`) }
	refused := func(when string) {
		before := outbox()
		_, err := store.Unstake(ctx, agent, p.ID)
		require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "%s: %v", when, err)
		require.ErrorContains(t, err, "is locked in the 30d tier until "+day30.Format(time.RFC3339)+"; locked tiers are committed until term end", when)
		require.Equal(t, before, outbox(), "%s: a refused unstake writes nothing", when)
		got, err := store.Position(ctx, p.ID)
		require.NoError(t, err)
		require.Equal(t, staking.PositionActive, got.Status, when)
		require.Nil(t, got.MaturedAt, "%s: not matured yet", when)
		require.Zero(t, liquid(), when)
	}
	checked := 0
	env.RegisterActivity(&activities.Staking{Ledger: store, Curve: staking.DefaultCurve})
	env.RegisterDelayedCallback(func() { refused("day 29"); checked++ }, 29*24*time.Hour)
	env.RegisterDelayedCallback(func() { refused("one second before day 30"); checked++ }, 30*24*time.Hour-time.Second)
	env.ExecuteWorkflow(workflows.StakingLockExpiry, workflows.LockExpiryInput{PositionID: p.ID, UnlockAt: *p.UnlockAt})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, 2, checked, "both early attempts ran inside the timer")

	got, err := store.Position(ctx, p.ID)
	require.NoError(t, err)
	require.NotNil(t, got.MaturedAt)
	require.Equal(t, day30, *got.MaturedAt, "matured exactly at the term end")
	require.Equal(t, staking.PositionActive, got.Status, "maturity lifts the lock; the money stays staked until the owner unstakes")
	require.EqualValues(t, 1, count(t, tdb.Pool, `SELECT count(*) FROM outbox WHERE event_type = 'StakeMatured' AND idempotency_key = $1`, "matured-"+strconv.FormatInt(p.ID, 10)))
	require.NoError(t, store.MatureLock(ctx, p.ID), "a duplicate expiry is a no-op")
	require.EqualValues(t, 1, count(t, tdb.Pool, `SELECT count(*) FROM outbox WHERE event_type = 'StakeMatured'`))

	require.Equal(t, day30, env.Now().UTC(), "the test clock stands at the term end")
	res, err := store.Unstake(ctx, agent, p.ID)
	require.NoError(t, err, "withdrawable at day 30")
	require.Nil(t, res.Request, "no cooldown after a locked term")
	require.Equal(t, staking.PositionClosed, res.Position.Status)
	require.Equal(t, 40*avt, liquid(), "the principal is back in liquid")
	require.EqualValues(t, 1, count(t, tdb.Pool, `SELECT count(*) FROM outbox WHERE event_type = 'TokensUnstaked'`))
}
