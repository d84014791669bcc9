package ledgerstore_test

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/staking"
)

func (e *env) stake(owner, tier string, units int64, compound bool, key string) ledgerstore.Position {
	e.t.Helper()
	p, err := e.store.Stake(e.ctx, ledgerstore.StakeRequest{Owner: owner, Tier: tier, AmountUnits: units, AutoCompound: compound, IdempotencyKey: key})
	require.NoError(e.t, err)
	return p
}

func (e *env) stakingSnapshot() string {
	e.t.Helper()
	var s string
	require.NoError(e.t, e.pool.QueryRow(e.ctx, `SELECT
		(SELECT count(*) FROM stake_positions)::text || '/' ||
		(SELECT count(*) FROM unstake_requests)::text || '/' ||
		(SELECT count(*) FROM staking_rewards)::text || '/' ||
		(SELECT count(*) FROM stake_slashes)::text || '/' ||
		(SELECT coalesce(string_agg(id || ':' || status || '=' || principal_units, ',' ORDER BY id), '') FROM stake_positions)`).Scan(&s))
	return e.snapshot() + "|" + s
}

func TestStakeAndFlexibleUnstakeCooldown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	alice := e.agent(100 * avt)

	// Bad input writes nothing.
	before := e.stakingSnapshot()
	for _, c := range []struct {
		req  ledgerstore.StakeRequest
		code apperr.Code
	}{
		{ledgerstore.StakeRequest{Owner: alice, Tier: "flexible", AmountUnits: 10*avt - 1, IdempotencyKey: "k1"}, apperr.Invalid},
		{ledgerstore.StakeRequest{Owner: alice, Tier: "7d", AmountUnits: 10 * avt, IdempotencyKey: "k1"}, apperr.Invalid},
		{ledgerstore.StakeRequest{Owner: alice, Tier: "flexible", AmountUnits: 101 * avt, IdempotencyKey: "k1"}, apperr.InsufficientFunds},
		{ledgerstore.StakeRequest{Owner: "treasury", Tier: "flexible", AmountUnits: 10 * avt, IdempotencyKey: "k1"}, apperr.Invalid},
		{ledgerstore.StakeRequest{Owner: alice, Tier: "flexible", AmountUnits: 10 * avt, IdempotencyKey: "k1", Validator: alice}, apperr.Invalid},
		{ledgerstore.StakeRequest{Owner: alice, Tier: "flexible", AmountUnits: 10 * avt, IdempotencyKey: "k1", Validator: agentID()}, apperr.FailedPrecondition},
		{ledgerstore.StakeRequest{Owner: agentID(), Tier: "flexible", AmountUnits: 10 * avt, IdempotencyKey: "k1"}, apperr.NotFound},
	} {
		_, err := e.store.Stake(e.ctx, c.req)
		require.Equal(t, c.code, apperr.CodeOf(err), "%+v: %v", c.req, err)
	}
	require.Equal(t, before, e.stakingSnapshot())

	p := e.stake(alice, "flexible", 60*avt, false, "stake-1")
	require.Equal(t, staking.PositionActive, p.Status)
	require.Nil(t, p.UnlockAt)
	require.Equal(t, 40*avt, e.bucket(alice, ledger.BucketLiquid))
	require.Equal(t, 60*avt, e.bucket(alice, ledger.BucketStaked))
	again := e.stake(alice, "flexible", 60*avt, false, "stake-1")
	require.True(t, again.Replayed)
	require.Equal(t, p.ID, again.ID)
	_, err := e.store.Stake(e.ctx, ledgerstore.StakeRequest{Owner: alice, Tier: "30d", AmountUnits: 60 * avt, IdempotencyKey: "stake-1"})
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err))

	// Someone else cannot unstake it.
	_, err = e.store.Unstake(e.ctx, e.agent(0), p.ID)
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))

	res, err := e.store.Unstake(e.ctx, alice, p.ID)
	require.NoError(t, err)
	require.NotNil(t, res.Request)
	require.Equal(t, staking.PositionCooldown, res.Position.Status)
	require.Equal(t, e.clock.Now().Add(7*24*time.Hour), res.Request.ReleasesAt)
	require.Equal(t, 60*avt, e.bucket(alice, ledger.BucketStaked), "still staked during the cooldown")
	twice, err := e.store.Unstake(e.ctx, alice, p.ID)
	require.NoError(t, err)
	require.True(t, twice.Request.Replayed, "the request is idempotent")
	require.Equal(t, res.Request.ReleasesAt, twice.Request.ReleasesAt)
	reqs, err := e.store.UnstakeRequests(e.ctx, alice, 0, 10)
	require.NoError(t, err)
	require.Len(t, reqs, 1)

	e.clock.Advance(7*24*time.Hour - time.Second)
	_, err = e.store.CompleteUnstake(e.ctx, p.ID)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "not before the cooldown ends")
	n, err := e.store.CompleteDueUnstakes(e.ctx, 10)
	require.NoError(t, err)
	require.Zero(t, n)
	e.clock.Advance(time.Second)
	done, err := e.store.CompleteUnstake(e.ctx, p.ID)
	require.NoError(t, err)
	require.Equal(t, staking.UnstakeCompleted, done.Status)
	require.Equal(t, 100*avt, e.bucket(alice, ledger.BucketLiquid))
	require.Zero(t, e.bucket(alice, ledger.BucketStaked))
	replay, err := e.store.CompleteUnstake(e.ctx, p.ID)
	require.NoError(t, err)
	require.True(t, replay.Replayed)
	require.Equal(t, 100*avt, e.bucket(alice, ledger.BucketLiquid), "released once")
	require.Equal(t, 1, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'TokensUnstaked'`))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'UnstakeRequested'`))
	e.checkInvariants()
}

// A 30-day stake cannot be withdrawn before day 30 and can from then on,
// at once (locked tiers have no cooldown).
func TestLockedTierIsCommittedUntilTermEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	bob := e.agent(50 * avt)
	p := e.stake(bob, "30d", 50*avt, false, "s")
	require.Equal(t, e.clock.Now().AddDate(0, 0, 30), *p.UnlockAt)
	e.clock.Advance(29 * 24 * time.Hour)
	before := e.stakingSnapshot()
	_, err := e.store.Unstake(e.ctx, bob, p.ID)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	require.ErrorContains(t, err, "committed until term end")
	require.Equal(t, before, e.stakingSnapshot(), "a refused unstake writes nothing")
	e.clock.Advance(24 * time.Hour)
	res, err := e.store.Unstake(e.ctx, bob, p.ID)
	require.NoError(t, err)
	require.Nil(t, res.Request, "no cooldown for a locked tier after its term")
	require.Equal(t, staking.PositionClosed, res.Position.Status)
	require.Equal(t, 50*avt, e.bucket(bob, ledger.BucketLiquid))
	_, err = e.store.Unstake(e.ctx, bob, p.ID)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	e.checkInvariants()
}

// The lock expiry is recorded once per position at or after its term end
// (matured_at, one StakeMatured event), never before, never for a flexible,
// unstaked or slashed position; the safety net marks overdue positions in
// batches; a matured position stays staked and keeps earning.
func TestLockExpiryMarksMaturityOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	bob, carol, dave := e.agent(200*avt), e.agent(50*avt), e.agent(50*avt)
	a1 := e.stake(bob, "30d", 50*avt, false, "a1")
	a2 := e.stake(bob, "30d", 50*avt, false, "a2")
	long := e.stake(bob, "90d", 50*avt, false, "b")
	flex := e.stake(bob, "flexible", 50*avt, false, "f")
	closed := e.stake(carol, "30d", 50*avt, false, "c")
	slashed := e.stake(dave, "30d", 50*avt, false, "d")
	matured := func() int { return e.count(`SELECT count(*) FROM stake_positions WHERE matured_at IS NOT NULL`) }
	events := func() int { return e.count(`SELECT count(*) FROM outbox WHERE event_type = 'StakeMatured'`) }

	_, err := e.store.MaturePosition(e.ctx, flex.ID)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "a flexible position has no lock")
	_, err = e.store.MaturePosition(e.ctx, 999_999)
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	e.clock.Advance(30*24*time.Hour - time.Second)
	before := e.stakingSnapshot()
	_, err = e.store.MaturePosition(e.ctx, a1.ID)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "one second before the term end")
	n, err := e.store.MatureDueLocks(e.ctx, 10)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, before, e.stakingSnapshot())
	require.Zero(t, matured())

	e.clock.Advance(time.Second)
	_, err = e.store.Unstake(e.ctx, carol, closed.ID) // unstaked at term end before any mark
	require.NoError(t, err)
	_, err = e.store.SlashStake(e.ctx, ledgerstore.SlashRequest{AgentDID: dave, CaseID: "case-m", Reason: "x", Actor: "admin:t"})
	require.NoError(t, err)
	p, err := e.store.MaturePosition(e.ctx, a1.ID)
	require.NoError(t, err)
	require.False(t, p.Replayed)
	require.Equal(t, e.clock.Now(), *p.MaturedAt)
	require.Equal(t, staking.PositionActive, p.Status, "the money stays staked until the owner unstakes")
	require.Equal(t, 1, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'StakeMatured' AND idempotency_key = $1`, "matured-"+strconv.FormatInt(a1.ID, 10)))
	for _, id := range []int64{a1.ID, closed.ID, slashed.ID} {
		p, err := e.store.MaturePosition(e.ctx, id)
		require.NoError(t, err)
		require.True(t, p.Replayed, "position %d", id)
	}
	require.Equal(t, 1, events())

	// The safety net: a2 is overdue (its workflow never ran); the 90-day
	// position is not due; closed and slashed ones are skipped.
	e.clock.Advance(time.Hour)
	n, err = e.store.MatureDueLocks(e.ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got, err := e.store.Position(e.ctx, a2.ID)
	require.NoError(t, err)
	require.Equal(t, e.clock.Now(), *got.MaturedAt)
	n, err = e.store.MatureDueLocks(e.ctx, 10)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, 2, matured())
	require.Equal(t, 2, events())

	// Matured positions keep earning until unstaked; unstaking is immediate.
	e.clock.Advance(12 * time.Hour)
	e.runDay("2026-12-02", 100)
	require.Equal(t, 2, e.count(`SELECT count(*) FROM staking_rewards WHERE position_id = ANY($1)`, []int64{a1.ID, a2.ID}))
	res, err := e.store.Unstake(e.ctx, bob, a1.ID)
	require.NoError(t, err)
	require.Equal(t, staking.PositionClosed, res.Position.Status)
	require.Nil(t, res.Request)

	// The batch limit holds: 60 more days bring the 90-day position due.
	e.clock.Advance(60 * 24 * time.Hour)
	n, err = e.store.MatureDueLocks(e.ctx, 1)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got, err = e.store.Position(e.ctx, long.ID)
	require.NoError(t, err)
	require.NotNil(t, got.MaturedAt)
	e.checkInvariants()
}

func (e *env) runDay(date string, page int) staking.RewardRun {
	e.t.Helper()
	_, err := e.store.StartRewardRun(e.ctx, date, e.clock.Now(), staking.DefaultCurve)
	require.NoError(e.t, err)
	after := int64(0)
	for i := 0; i < 10_000; i++ {
		pg, err := e.store.PayRewardPage(e.ctx, date, after, page)
		require.NoError(e.t, err)
		after = pg.LastID
		if pg.Done {
			break
		}
	}
	run, err := e.store.FinishRewardRun(e.ctx, date)
	require.NoError(e.t, err)
	return run
}

func TestRewardRunPaysOnceWithCompoundAndDelegation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	alice, bob, val := e.agent(1000*avt), e.agent(1000*avt), e.agent(0)
	_, err := e.store.SetValidator(e.ctx, val, 1000, true) // 10 % commission
	require.NoError(t, err)
	pa := e.stake(alice, "flexible", 100*avt, false, "a1")
	pc := e.stake(alice, "365d", 100*avt, true, "a2")
	pb, err := e.store.Stake(e.ctx, ledgerstore.StakeRequest{Owner: bob, Tier: "90d", AmountUnits: 200 * avt, Validator: val, IdempotencyKey: "b1"})
	require.NoError(t, err)
	pd := e.stake(bob, "flexible", 50*avt, false, "b2")
	_, err = e.store.Unstake(e.ctx, bob, pd.ID) // cooling down: earns nothing
	require.NoError(t, err)
	e.clock.Advance(time.Hour)

	apy, err := e.store.StakingAPY(e.ctx, staking.DefaultCurve)
	require.NoError(t, err)
	rate := map[staking.TierID]int64{}
	for _, a := range apy.Tiers {
		rate[a.Tier.ID] = a.APYBps
	}
	reward := func(principal int64, tier staking.TierID) int64 {
		r, err := staking.DailyReward(principal, rate[tier])
		require.NoError(t, err)
		return r
	}
	liqA, liqB, stB := e.bucket(alice, ledger.BucketLiquid), e.bucket(bob, ledger.BucketLiquid), e.bucket(bob, ledger.BucketStaked)
	treasury := e.bucket("treasury", ledger.BucketLiquid)

	run, err := e.store.StartRewardRun(e.ctx, "2026-11-01", e.clock.Now(), staking.DefaultCurve)
	require.NoError(t, err)
	wantDue := reward(100*avt, staking.Flexible) + reward(100*avt, staking.Lock365) + reward(200*avt, staking.Lock90)
	require.Equal(t, wantDue, run.DueUnits)
	require.Equal(t, [2]int64{1, 1}, [2]int64{run.PayNum, run.PayDen})
	// Page size 2: two pages; the first page replayed pays nothing twice.
	pg1, err := e.store.PayRewardPage(e.ctx, "2026-11-01", 0, 2)
	require.NoError(t, err)
	require.Equal(t, 2, pg1.Paid)
	// A retried page (same cursor: the worker died before recording the
	// result) skips what the first attempt paid and moves on.
	retry, err := e.store.PayRewardPage(e.ctx, "2026-11-01", 0, 2)
	require.NoError(t, err)
	require.Equal(t, 1, retry.Paid, "only the position the first attempt did not reach")
	require.True(t, retry.Done)
	pg2, err := e.store.PayRewardPage(e.ctx, "2026-11-01", pg1.LastID, 2)
	require.NoError(t, err)
	require.Equal(t, 0, pg2.Paid, "a duplicated page pays nothing")
	require.True(t, pg2.Done)
	fin, err := e.store.FinishRewardRun(e.ctx, "2026-11-01")
	require.NoError(t, err)
	require.True(t, fin.Completed)
	require.Equal(t, wantDue, fin.PaidUnits)
	require.EqualValues(t, 3, fin.PaidPositions)
	require.Zero(t, fin.ShortfallUnits)

	// A second start of the same date changes nothing and pays nothing.
	again := e.runDay("2026-11-01", 100)
	require.Equal(t, fin.PaidUnits, again.PaidUnits)

	bobReward := reward(200*avt, staking.Lock90)
	valCut := bobReward / 10
	require.Equal(t, liqA+reward(100*avt, staking.Flexible), e.bucket(alice, ledger.BucketLiquid), "paid to liquid")
	pos, err := e.store.Position(e.ctx, pc.ID)
	require.NoError(t, err)
	require.Equal(t, 100*avt+reward(100*avt, staking.Lock365), pos.PrincipalUnits, "auto-compounded")
	require.Equal(t, liqB+bobReward-valCut, e.bucket(bob, ledger.BucketLiquid))
	require.Equal(t, stB, e.bucket(bob, ledger.BucketStaked))
	require.Equal(t, valCut, e.bucket(val, ledger.BucketLiquid), "the validator's commission")
	require.Equal(t, treasury-wantDue, e.bucket("treasury", ledger.BucketLiquid))
	require.Equal(t, 3, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'StakingRewardPaid'`))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1`, "reward-2026-11-01-"+itoaT(pb.ID)))

	hist, err := e.store.Rewards(e.ctx, val, ledgerstore.RewardCursor{}, 10)
	require.NoError(t, err)
	require.Len(t, hist, 1, "the validator sees the rewards it took a share of")
	hist, err = e.store.Rewards(e.ctx, alice, ledgerstore.RewardCursor{}, 10)
	require.NoError(t, err)
	require.Len(t, hist, 2)
	_ = pa

	// The next day compounds on the grown principal.
	e.clock.Advance(24 * time.Hour)
	e.runDay("2026-11-02", 1)
	pos2, err := e.store.Position(e.ctx, pc.ID)
	require.NoError(t, err)
	require.Equal(t, pos.PrincipalUnits+reward(pos.PrincipalUnits, staking.Lock365), pos2.PrincipalUnits)
	e.checkInvariants()
}

// Property: whatever the principals and however short the treasury, the
// day pays at most the treasury at the start of the run, every paid
// position got at most its full reward, and the dust stays in the treasury.
func TestRewardRunNeverPaysMoreThanTheTreasury(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(8, 8))
	for round := 0; round < 4; round++ {
		e := newEnv(t, envOpts{genesis: 1_000_000 * avt})
		n := 5 + rng.IntN(20)
		for i := 0; i < n; i++ {
			units := 10*avt + rng.Int64N(5000*avt)
			a := e.agent(units)
			e.stake(a, string(staking.Tiers[rng.IntN(5)].ID), units, rng.IntN(2) == 0, "p")
		}
		// Drain the treasury to a random small amount (maybe zero).
		left := rng.Int64N(3 * avt)
		tr := e.bucket("treasury", ledger.BucketLiquid)
		if tr > left {
			sink := e.agent(0)
			_, err := e.store.Grant(e.ctx, ledgerstore.SupplyRequest{To: sink, AmountUnits: tr - left, Reason: "drain", Actor: "admin:test", IdempotencyKey: "drain"})
			require.NoError(t, err)
		}
		e.clock.Advance(time.Minute)
		start := e.bucket("treasury", ledger.BucketLiquid)
		run := e.runDay("2026-11-01", 1+rng.IntN(7))
		require.Equal(t, start, run.TreasuryStartUnits)
		require.LessOrEqual(t, run.PaidUnits, start, "never more than the treasury held")
		require.LessOrEqual(t, run.PaidUnits, run.DueUnits)
		require.Equal(t, start-run.PaidUnits, e.bucket("treasury", ledger.BucketLiquid), "the dust stays in the treasury")
		if run.DueUnits > start {
			require.True(t, run.Short())
			require.Equal(t, run.DueUnits-run.PaidUnits, run.ShortfallUnits)
		}
		require.Zero(t, e.count(`SELECT count(*) FROM staking_rewards r JOIN stake_positions p ON p.id = r.position_id
			WHERE r.reward_units > floor(p.staked_units::numeric * r.apy_bps / 3650000)`), "no position paid above its full reward")
		e.checkInvariants()
	}
}

func TestSlashForceUnstakesWithPenalty(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	eve := e.agent(300 * avt)
	locked := e.stake(eve, "365d", 100*avt, false, "l")
	flex := e.stake(eve, "flexible", 101*avt, false, "f")
	_, err := e.store.Unstake(e.ctx, eve, flex.ID) // cooling down: slashed too
	require.NoError(t, err)
	treasury := e.bucket("treasury", ledger.BucketLiquid)

	before := e.stakingSnapshot()
	_, err = e.store.SlashStake(e.ctx, ledgerstore.SlashRequest{AgentDID: eve, CaseID: "bad case!", Reason: "x", Actor: "admin:t"})
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	require.Equal(t, before, e.stakingSnapshot())

	sl, err := e.store.SlashStake(e.ctx, ledgerstore.SlashRequest{AgentDID: eve, CaseID: "case-1", Reason: "lost dispute", Actor: "admin:t"})
	require.NoError(t, err)
	require.Equal(t, 2, sl.Positions)
	require.Equal(t, 201*avt, sl.SlashedUnits)
	require.Equal(t, 10*avt+(101*avt+9)/10, sl.PenaltyUnits, "10 %, rounded up")
	require.Equal(t, treasury+sl.PenaltyUnits, e.bucket("treasury", ledger.BucketLiquid))
	require.Zero(t, e.bucket(eve, ledger.BucketStaked))
	require.Equal(t, 300*avt-sl.PenaltyUnits, e.bucket(eve, ledger.BucketLiquid))
	for _, id := range []int64{locked.ID, flex.ID} {
		p, err := e.store.Position(e.ctx, id)
		require.NoError(t, err)
		require.Equal(t, staking.PositionSlashed, p.Status)
	}
	require.Equal(t, 1, e.count(`SELECT count(*) FROM unstake_requests WHERE status = 'slashed'`))

	// Idempotent per case; the same case for another agent is refused.
	other := e.agent(0)
	before = e.stakingSnapshot()
	again, err := e.store.SlashStake(e.ctx, ledgerstore.SlashRequest{AgentDID: eve, CaseID: "case-1", Reason: "lost dispute", Actor: "admin:t"})
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, sl.PenaltyUnits, again.PenaltyUnits)
	_, err = e.store.SlashStake(e.ctx, ledgerstore.SlashRequest{AgentDID: other, CaseID: "case-1", Reason: "x", Actor: "admin:t"})
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err))
	// The cooldown's release finds nothing left to release.
	e.clock.Advance(8 * 24 * time.Hour)
	u, err := e.store.CompleteUnstake(e.ctx, flex.ID)
	require.NoError(t, err)
	require.Equal(t, staking.UnstakeSlashed, u.Status)
	require.Equal(t, before, e.stakingSnapshot())
	require.Equal(t, 2, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'StakeSlashed'`))
	e.checkInvariants()
}

func TestDelegation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	alice, val := e.agent(100*avt), e.agent(0)
	p := e.stake(alice, "flexible", 100*avt, false, "s")
	_, err := e.store.Delegate(e.ctx, alice, p.ID, val)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "not a validator yet")
	_, err = e.store.SetValidator(e.ctx, val, 10001, true)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	_, err = e.store.SetValidator(e.ctx, val, 500, false)
	require.NoError(t, err)
	_, err = e.store.Delegate(e.ctx, alice, p.ID, val)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "not accepting")
	e.clock.Advance(time.Second)
	_, err = e.store.SetValidator(e.ctx, val, 500, true)
	require.NoError(t, err)
	d, err := e.store.Delegate(e.ctx, alice, p.ID, val)
	require.NoError(t, err)
	require.Equal(t, val, d.Validator)
	vs, err := e.store.Validators(e.ctx, "", 10)
	require.NoError(t, err)
	require.Len(t, vs, 1)
	require.Equal(t, 100*avt, vs[0].DelegatedUnits)
	_, err = e.store.Delegate(e.ctx, alice, p.ID, alice)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	e.clock.Advance(time.Second)
	un, err := e.store.Delegate(e.ctx, alice, p.ID, "")
	require.NoError(t, err)
	require.Empty(t, un.Validator)
	require.Equal(t, 2, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'DelegationChanged'`))
	e.checkInvariants()
}

// A stake's key replayed with another validator is key reuse, as with any
// other changed field: the replay would otherwise answer a position
// delegated elsewhere than the request asks.
func TestStakeReplayComparesTheValidator(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	alice, v1, v2 := e.agent(100*avt), e.agent(0), e.agent(0)
	for _, v := range []string{v1, v2} {
		_, err := e.store.SetValidator(e.ctx, v, 500, true)
		require.NoError(t, err)
	}
	stake := func(validator, key string) (ledgerstore.Position, error) {
		return e.store.Stake(e.ctx, ledgerstore.StakeRequest{Owner: alice, Tier: "flexible", AmountUnits: 20 * avt, Validator: validator, IdempotencyKey: key})
	}
	p, err := stake(v1, "with-v1")
	require.NoError(t, err)
	require.Equal(t, v1, p.Validator)
	for _, other := range []string{v2, ""} {
		_, err = stake(other, "with-v1")
		require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err), "replay with validator %q", other)
	}
	again, err := stake(v1, "with-v1")
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, p.ID, again.ID)

	_, err = stake("", "without")
	require.NoError(t, err)
	_, err = stake(v1, "without")
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err), "a validator added on replay")

	// Re-delegated: the position's answer now names v2.
	e.clock.Advance(time.Second)
	_, err = e.store.Delegate(e.ctx, alice, p.ID, v2)
	require.NoError(t, err)
	_, err = stake(v1, "with-v1")
	require.Equal(t, apperr.IdempotencyReuse, apperr.CodeOf(err))
	moved, err := stake(v2, "with-v1")
	require.NoError(t, err)
	require.True(t, moved.Replayed)
	require.Equal(t, 40*avt, e.bucket(alice, ledger.BucketStaked), "two stakes, whatever the replays")
	e.checkInvariants()
}

func itoaT(n int64) string { return strconv.FormatInt(n, 10) }

// Unstakes racing a reward run: every position still active at the end
// was paid once, and the ledger stays balanced (a page may come back short
// when positions change under its lock wait; it must not end the run).
func TestRewardRunRacingUnstakes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	type pos struct {
		owner string
		id    int64
	}
	var ps []pos
	for i := 0; i < 60; i++ {
		a := e.agent(20 * avt)
		ps = append(ps, pos{a, e.stake(a, "flexible", 20*avt, i%2 == 0, "s").ID})
	}
	e.clock.Advance(time.Minute)
	_, err := e.store.StartRewardRun(e.ctx, "2026-11-01", e.clock.Now(), staking.DefaultCurve)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(ps); i += 3 {
			_, err := e.store.Unstake(e.ctx, ps[i].owner, ps[i].id)
			require.NoError(t, err)
		}
	}()
	after := int64(0)
	for {
		pg, err := e.store.PayRewardPage(e.ctx, "2026-11-01", after, 4)
		require.NoError(t, err)
		after = pg.LastID
		if pg.Done {
			break
		}
	}
	<-done
	require.Zero(t, e.count(`SELECT count(*) FROM stake_positions p WHERE p.status = 'active'
		AND NOT EXISTS (SELECT 1 FROM staking_rewards r WHERE r.position_id = p.id)`), "every active position paid")
	require.Equal(t, 20, e.count(`SELECT count(*) FROM stake_positions WHERE status = 'cooldown'`))
	e.checkInvariants()
}

// Validator updates and delegation changes at the same clock instant are
// distinct changes: each gets its own event (keys from per-row versions,
// not from the time).
func TestStakingChangeEventsAtTheSameInstant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	alice, val := e.agent(100*avt), e.agent(0)
	p := e.stake(alice, "flexible", 100*avt, false, "s")
	for _, c := range []int64{500, 700, 500} {
		_, err := e.store.SetValidator(e.ctx, val, c, true)
		require.NoError(t, err)
	}
	for _, v := range []string{val, "", val} {
		_, err := e.store.Delegate(e.ctx, alice, p.ID, v)
		require.NoError(t, err)
	}
	require.Equal(t, 3, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'ValidatorUpdated'`))
	require.Equal(t, 3, e.count(`SELECT count(*) FROM outbox WHERE event_type = 'DelegationChanged'`))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM outbox WHERE idempotency_key = 'delegation-`+itoaT(p.ID)+`-v3'`))
	e.checkInvariants()
}

// A reward run for a day that has not begun, for a day past the catch-up
// window, or with a cutoff outside its day (what a workflow started with
// forged input would ask for) is refused and writes nothing; a run that
// exists is still returned as it was, whatever the clock says now.
func TestRewardRunRefusesDaysAndCutoffsOutsideTheRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	alice := e.agent(100 * avt)
	e.stake(alice, "flexible", 100*avt, false, "s")
	e.clock.Advance(time.Minute) // 2026-11-01 12:01
	now := e.clock.Now()
	before := e.stakingSnapshot()
	treasury := e.bucket("treasury", ledger.BucketLiquid)
	for name, run := range map[string]struct {
		date   string
		cutoff time.Time
	}{
		"tomorrow":              {"2026-11-02", now},
		"next year":             {"2027-11-01", now},
		"past the window":       {"2026-10-28", time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC)},
		"yesterday, cutoff now": {"2026-10-31", now},
		"cutoff in the future":  {"2026-11-01", now.Add(time.Hour)},
	} {
		_, err := e.store.StartRewardRun(e.ctx, run.date, run.cutoff, staking.DefaultCurve)
		require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "%s: %v", name, err)
	}
	require.Zero(t, e.count(`SELECT count(*) FROM staking_reward_runs`))
	require.Equal(t, before, e.stakingSnapshot())
	require.Equal(t, treasury, e.bucket("treasury", ledger.BucketLiquid))

	// A missed day within the window, with its midnight cutoff.
	run, err := e.store.StartRewardRun(e.ctx, "2026-10-30", time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC), staking.DefaultCurve)
	require.NoError(t, err)
	require.Zero(t, run.DueUnits, "the position was created after that day")
	first, err := e.store.StartRewardRun(e.ctx, "2026-11-01", now, staking.DefaultCurve)
	require.NoError(t, err)
	require.NotZero(t, first.DueUnits)
	e.clock.Advance(10 * 24 * time.Hour)
	again, err := e.store.StartRewardRun(e.ctx, "2026-11-01", e.clock.Now(), staking.DefaultCurve)
	require.NoError(t, err, "an existing run is returned, not checked again")
	require.Equal(t, first.Cutoff, again.Cutoff)
}
