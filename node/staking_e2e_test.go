package node_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/staking"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/worker"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// TestStakingEndToEnd drives staking over HTTP on a node with real
// Postgres, Temporal and Kafka: positions are created over REST, the daily
// reward schedule is triggered through the SDK (twice: the date is paid
// once), rewards show on balances and in the reward history, a locked
// position refuses an early unstake, a flexible unstake starts its cooldown
// workflow, an enforcement slash force-unstakes with the 10 % penalty, and
// every event reaches the EventStore with the supply audit at delta 0.
func TestStakingEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	frame, reg := testRegistry(t)
	frame.GenesisSupplyUnits = 1_000_000 * avt
	dataDir := t.TempDir()
	n, err := node.Start(ctx, node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: dataDir, WriteAdminCredentials: true, Log: quietLog,
	})
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })
	t.Cleanup(func() { deleteSchedules(n, reg.ID) })
	c := httpClient{t, n.URL()}
	teg, es := n.Pools[db.RoleTEG], n.Pools[db.RoleEventStore]
	// bucket reads a balance that must exist: a missing row or a failed
	// query fails the test instead of reading as a number.
	bucket := func(account, bucket string) int64 {
		t.Helper()
		var units int64
		require.NoError(t, teg.QueryRow(ctx, `SELECT units FROM balances WHERE account_id = $1 AND bucket = $2`, account, bucket).Scan(&units), "balance of %s/%s", account, bucket)
		return units
	}

	admin := c.adminToken(dataDir, reg.ID)
	dev, devTok := c.signUp("Lin", "lin@example.org")
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": dev.AccountID, "amount": "100", "reason": "bonds"}, nil))
	newAgent := func() (string, string) {
		var bt struct {
			Token string `json:"bootstrap_token"`
		}
		require.Equal(t, 201, c.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
		var ag struct {
			DID          string `json:"did"`
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		require.Equal(t, 201, c.call("POST", "/api/v1/agents", bt.Token, map[string]any{}, &ag))
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		require.Equal(t, 200, c.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": ag.ClientID, "client_secret": ag.ClientSecret}, &tok))
		return ag.DID, tok.AccessToken
	}
	alice, aliceTok := newAgent()
	val, valTok := newAgent()
	t.Cleanup(func() { terminateBonds(n, alice, val) })
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": alice, "amount": "1000", "reason": "staking e2e"}, nil))

	// Live APY table (public).
	var tiers struct {
		TVLRatioBps int64 `json:"tvl_ratio_bps"`
		Tiers       []struct {
			Tier   string `json:"tier"`
			APYBps int64  `json:"apy_bps"`
		} `json:"tiers"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/staking/apy-tiers", "", nil, &tiers))
	require.Len(t, tiers.Tiers, 5)
	require.Equal(t, "flexible", tiers.Tiers[0].Tier)

	// Bad input: 4xx and nothing written.
	require.Equal(t, 400, c.call("POST", "/api/v1/staking/stake", aliceTok, map[string]any{"tier": "flexible", "amount": "9.99"}, nil))
	require.Equal(t, 400, c.call("POST", "/api/v1/staking/stake", aliceTok, map[string]any{"tier": "7d", "amount": "10"}, nil))
	require.Equal(t, 422, c.call("POST", "/api/v1/staking/stake", aliceTok, map[string]any{"tier": "flexible", "amount": "5000"}, nil))
	require.Equal(t, 401, c.call("POST", "/api/v1/staking/stake", "", map[string]any{"tier": "flexible", "amount": "10"}, nil))
	require.Zero(t, countWhere(t, teg, `SELECT count(*) FROM balances WHERE account_id = $1 AND bucket = 'staked'`, alice), "no staked bucket yet")

	// A validator with 10 % commission; alice stakes three positions.
	require.Equal(t, 200, c.call("POST", "/api/v1/staking/validator", valTok, map[string]any{"commission_bps": 1000, "accepting": true}, nil))
	type position struct {
		ID             int64  `json:"id"`
		Status         string `json:"status"`
		PrincipalUnits int64  `json:"principal_units"`
	}
	var flex, locked, delegated position
	require.Equal(t, 201, c.call("POST", "/api/v1/staking/stake", aliceTok, map[string]any{"tier": "flexible", "amount": "100"}, &flex))
	require.Equal(t, 201, c.call("POST", "/api/v1/staking/stake", aliceTok, map[string]any{"tier": "365d", "amount": "200", "auto_compound": true}, &locked))
	require.Equal(t, 201, c.call("POST", "/api/v1/staking/stake", aliceTok, map[string]any{"tier": "90d", "amount": "300", "validator": val}, &delegated))
	require.Equal(t, 600*avt, bucket(alice, "staked"))
	require.Equal(t, 400*avt, bucket(alice, "liquid"))
	var list struct {
		Positions []position `json:"positions"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/staking/positions", aliceTok, nil, &list))
	require.Len(t, list.Positions, 3)
	require.Equal(t, 422, c.call("POST", fmt.Sprintf("/api/v1/staking/positions/%d/unstake", locked.ID), aliceTok, map[string]any{}, nil), "locked until term end")
	// Each locked position got its lock-expiry workflow, waiting on its term.
	for _, id := range []int64{locked.ID, delegated.ID} {
		lockID := workflows.LockExpiryWorkflowID(reg.ID, id)
		t.Cleanup(func() { _ = n.Temporal.TerminateWorkflow(context.Background(), lockID, "", "test over") })
		desc, err := n.Temporal.DescribeWorkflow(ctx, lockID, "")
		require.NoError(t, err, lockID)
		require.Equal(t, workflows.LockExpiryName, desc.RawResponse.WorkflowExecutionInfo.Type.Name)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.RawResponse.WorkflowExecutionInfo.Status)
	}
	_, err = n.Temporal.DescribeWorkflow(ctx, workflows.LockExpiryWorkflowID(reg.ID, flex.ID), "")
	require.Error(t, err, "no lock expiry for the flexible tier")

	// Trigger the daily schedule now through the SDK; the date's run pays.
	require.Equal(t, 200, c.call("GET", "/api/v1/staking/apy-tiers", "", nil, &tiers))
	rate := map[string]int64{}
	for _, tr := range tiers.Tiers {
		rate[tr.Tier] = tr.APYBps
	}
	reward := func(units int64, tier string) int64 {
		r, err := staking.DailyReward(units, rate[tier])
		require.NoError(t, err)
		return r
	}
	liquidBefore, treasuryBefore := bucket(alice, "liquid"), bucket("treasury", "liquid")
	sched := n.Temporal.ScheduleClient().GetHandle(ctx, worker.StakingRewardsScheduleID(reg.ID))
	runDay := func(nth int) workflows.RewardRunResult {
		require.NoError(t, sched.Trigger(ctx, client.ScheduleTriggerOptions{}))
		var res workflows.RewardRunResult
		// Polled: DescribeSchedule is a query to the schedule's own
		// workflow and, on a busy shared Temporal, can time out while that
		// workflow is processing the trigger. A failed call is "not yet"
		// (a require here would end the polling goroutine, and with it
		// the wait, at the first transient error).
		var last lastSeen // what the poll saw last, for the failure message
		last.Store("nothing yet")
		require.Eventually(t, func() bool {
			d, err := sched.Describe(ctx)
			if err != nil {
				last.Store("describe: " + err.Error())
				return false
			}
			if len(d.Info.RecentActions) < nth {
				last.Store(fmt.Sprintf("%d recent actions, %d running", len(d.Info.RecentActions), len(d.Info.RunningWorkflows)))
				return false
			}
			a := d.Info.RecentActions[nth-1].StartWorkflowResult
			if err := n.Temporal.GetWorkflow(ctx, a.WorkflowID, a.FirstExecutionRunID).Get(ctx, &res); err != nil {
				last.Store("run " + a.WorkflowID + ": " + err.Error())
				return false
			}
			return true
		}, 60*time.Second, 200*time.Millisecond, "reward run %d of the triggered schedule (last seen: %v)", nth, &last)
		return res
	}
	// A triggered action's nominal time (the run's cutoff: positions
	// created before it earn the day) is whole seconds.
	time.Sleep(1100 * time.Millisecond)
	triggeredFrom := time.Now().UTC().Format(staking.DateLayout)
	first := runDay(1)
	require.False(t, first.AlreadyRun)
	require.EqualValues(t, 3, first.PaidPositions)
	date := first.Date
	// The run pays the trigger's UTC date (either side of a midnight the
	// trigger may have straddled).
	require.Contains(t, []string{triggeredFrom, time.Now().UTC().Format(staking.DateLayout)}, date)
	rFlex, rLocked, rDel := reward(100*avt, "flexible"), reward(200*avt, "365d"), reward(300*avt, "90d")
	valCut := rDel / 10
	require.Equal(t, liquidBefore+rFlex+rDel-valCut, bucket(alice, "liquid"), "rewards on the balance")
	require.Equal(t, 600*avt+rLocked, bucket(alice, "staked"), "auto-compounded")
	require.Equal(t, 1, countWhere(t, teg, `SELECT count(*) FROM balances WHERE account_id = $1 AND bucket = 'liquid' AND units = $2`, val, valCut))
	require.Equal(t, treasuryBefore-rFlex-rLocked-rDel, bucket("treasury", "liquid"))

	second := runDay(2)
	// rewardDays is how many dates were paid: two when midnight UTC passed
	// between the triggers. Only the same-date check depends on one date;
	// everything after it runs either way.
	rewardDays := 1
	if second.Date == date {
		require.True(t, second.AlreadyRun, "the same date is paid once")
		require.Equal(t, 600*avt+rLocked, bucket(alice, "staked"))
	} else {
		t.Logf("midnight UTC passed between the two triggers (%s, %s): same-date check not applicable", date, second.Date)
		require.False(t, second.AlreadyRun, "a new date is a new run")
		require.EqualValues(t, 3, second.PaidPositions)
		rewardDays = 2
	}
	var hist struct {
		Rewards []struct {
			Date        string `json:"date"`
			RewardUnits int64  `json:"reward_units"`
		} `json:"rewards"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/staking/rewards", aliceTok, nil, &hist))
	require.Len(t, hist.Rewards, 3*rewardDays)
	dates := map[string]int{}
	for _, r := range hist.Rewards {
		dates[r.Date]++
	}
	require.Equal(t, 3, dates[date], "three positions paid on %s: %v", date, dates)

	// Flexible unstake: 202, its cooldown workflow runs; the request lists.
	var un struct {
		Request struct {
			Status     string    `json:"status"`
			ReleasesAt time.Time `json:"releases_at"`
		} `json:"unstake_request"`
	}
	require.Equal(t, 202, c.call("POST", fmt.Sprintf("/api/v1/staking/positions/%d/unstake", flex.ID), aliceTok, map[string]any{}, &un))
	require.Equal(t, "pending", un.Request.Status)
	cooldownID := workflows.UnstakeCooldownWorkflowID(reg.ID, flex.ID)
	t.Cleanup(func() { _ = n.Temporal.TerminateWorkflow(context.Background(), cooldownID, "", "test over") })
	desc, err := n.Temporal.DescribeWorkflow(ctx, cooldownID, "")
	require.NoError(t, err)
	require.Equal(t, workflows.UnstakeCooldownName, desc.RawResponse.WorkflowExecutionInfo.Type.Name)
	var reqs struct {
		Requests []struct {
			PositionID int64 `json:"position_id"`
		} `json:"unstake_requests"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/staking/unstake-requests", aliceTok, nil, &reqs))
	require.Len(t, reqs.Requests, 1)

	// Enforcement slash: every open position, 10 % to the treasury.
	treasuryBefore = bucket("treasury", "liquid")
	stakedBefore := bucket(alice, "staked")
	var sl struct {
		Positions    int   `json:"positions"`
		SlashedUnits int64 `json:"slashed_units"`
		PenaltyUnits int64 `json:"penalty_units"`
	}
	require.Equal(t, 403, c.call("POST", "/api/v1/admin/enforcement/agents/"+alice+"/slash-stake", aliceTok, map[string]any{"case_id": "case-7", "reason": "lost dispute"}, nil))
	require.Equal(t, 200, c.call("POST", "/api/v1/admin/enforcement/agents/"+alice+"/slash-stake", admin, map[string]any{"case_id": "case-7", "reason": "lost dispute"}, &sl))
	require.Equal(t, 3, sl.Positions)
	require.Equal(t, stakedBefore, sl.SlashedUnits)
	require.Zero(t, bucket(alice, "staked"))
	require.Equal(t, treasuryBefore+sl.PenaltyUnits, bucket("treasury", "liquid"))
	var again struct {
		PenaltyUnits int64 `json:"penalty_units"`
	}
	require.Equal(t, 200, c.call("POST", "/api/v1/admin/enforcement/agents/"+alice+"/slash-stake", admin, map[string]any{"case_id": "case-7", "reason": "lost dispute"}, &again))
	require.Equal(t, sl.PenaltyUnits, again.PenaltyUnits, "idempotent per case")
	require.Equal(t, treasuryBefore+sl.PenaltyUnits, bucket("treasury", "liquid"))

	// Every TEG event reached the EventStore, the staking ones included,
	// and the supply audit is exact.
	var outboxRows int
	require.NoError(t, teg.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outboxRows))
	require.Eventually(t, func() bool {
		return countWhere(t, es, `SELECT count(*) FROM events WHERE source = 'teg'`) == outboxRows
	}, 30*time.Second, 100*time.Millisecond, "all %d TEG events reach the EventStore", outboxRows)
	for typ, want := range map[string]int{"TokensStaked": 3, "StakingRewardPaid": 3 * rewardDays, "UnstakeRequested": 1, "StakeSlashed": 3, "ValidatorUpdated": 1} {
		require.Equal(t, want, countWhere(t, es, `SELECT count(*) FROM events WHERE event_type = $1`, typ), typ)
	}
	require.Zero(t, countWhere(t, es, `SELECT count(*) FROM quarantine`), "nothing quarantined")
	require.Equal(t, 1, countWhere(t, es, `SELECT count(*) FROM events WHERE idempotency_key = $1`, "reward-"+date+"-"+strconv.FormatInt(locked.ID, 10)))
	rep, err := ingest.Audit(ctx, es, frame.ID)
	require.NoError(t, err)
	require.Zero(t, rep.Delta, "%+v", rep)
	replay, err := ingest.Replay(ctx, es, frame.ID)
	require.NoError(t, err)
	require.True(t, replay.OK, "%+v", replay)
	var projected int64
	require.NoError(t, es.QueryRow(ctx, `SELECT balance FROM projection_balances WHERE account = $1 AND bucket = 'liquid'`, ingest.Qualify(reg.ID, alice)).Scan(&projected))
	require.Equal(t, bucket(alice, "liquid"), projected)
}

func countWhere(t *testing.T, q *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, q.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// lastSeen is what a poll saw last; a failure message formats it when the
// wait ends (the poll runs on another goroutine).
type lastSeen struct{ atomic.Value }

func (l *lastSeen) String() string { v, _ := l.Load().(string); return v }
