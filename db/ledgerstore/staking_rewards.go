package ledgerstore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// MaxRewardPage bounds the positions one PayRewardPage call pays (one
// transaction).
const MaxRewardPage = 20_000

// Reward-run metrics: the shortfall gauge is the alert (the treasury could
// not cover a day's rewards; see deploy's alert rules).
var (
	stakingShortfall = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "staking_reward_shortfall_units",
		Help: "Rewards the last completed reward run owed beyond what the treasury could pay (0 = fully paid).",
	}, []string{"registry"})
	stakingShortRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "staking_reward_runs_short_total",
		Help: "Reward runs that paid pro rata because the treasury was short.",
	}, []string{"registry"})
	stakingPaidUnits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "staking_rewards_paid_units_total",
		Help: "Staking rewards paid, in base units.",
	}, []string{"registry"})
	stakingPaidPositions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "staking_rewards_paid_positions_total",
		Help: "Position-days paid by reward runs.",
	}, []string{"registry"})
)

// StakingCollectors are the staking metrics, for the node's registry.
func StakingCollectors() []prometheus.Collector {
	return []prometheus.Collector{stakingShortfall, stakingShortRuns, stakingPaidUnits, stakingPaidPositions}
}

func parseRunDate(date string) (pgtype.Date, error) {
	t, err := time.Parse(staking.DateLayout, date)
	if err != nil {
		return pgtype.Date{}, apperr.New(apperr.Invalid, "run date %q is not YYYY-MM-DD", date)
	}
	return pgtype.Date{Time: t, Valid: true}, nil
}

func runFromRow(r tegdb.StakingRewardRun) staking.RewardRun {
	out := staking.RewardRun{
		Date: r.RunDate.Time.Format(staking.DateLayout), Cutoff: r.Cutoff.UTC(), TVLRatioBps: r.TvlRatioBps, APYBps: r.ApyBps,
		DueUnits: r.DueUnits, TreasuryStartUnits: r.TreasuryStartUnits, PayNum: r.PayNum, PayDen: r.PayDen,
		PaidUnits: r.PaidUnits, PaidPositions: r.PaidPositions, ShortfallUnits: r.ShortfallUnits,
		Completed: r.Status == "completed", StartedAt: r.StartedAt.UTC(),
	}
	if r.CompletedAt != nil {
		t := r.CompletedAt.UTC()
		out.CompletedAt = &t
	}
	return out
}

// StartRewardRun fixes the parameters of date's reward run, once: the TVL
// ratio and each tier's APY under curve, the day's total due (Σ of the full
// rewards of every active position created before cutoff) and the treasury's
// available balance, hence the pro-rata factor. A second call for the same
// date returns the stored run unchanged. A new run must meet
// staking.CheckRunDay at the ledger's time (Invalid otherwise: nothing is
// written).
func (s *Store) StartRewardRun(ctx context.Context, date string, cutoff time.Time, curve staking.Curve) (staking.RewardRun, error) {
	d, err := parseRunDate(date)
	if err != nil {
		return staking.RewardRun{}, err
	}
	if err := curve.Validate(); err != nil {
		return staking.RewardRun{}, apperr.New(apperr.Invalid, "%s", err.Error())
	}
	now := s.clock()
	var out staking.RewardRun
	err = s.db.Tx(ctx, func(tx pgx.Tx) error {
		if r, err := s.q.RewardRunGet(ctx, tx, d); err == nil {
			out = runFromRow(r)
			return nil
		} else if !db.IsNotFound(err) {
			return err
		}
		// A new run only for a day that has begun, within the catch-up
		// window, with a cutoff inside it: the date and cutoff come from
		// a workflow's input.
		if err := staking.CheckRunDay(date, cutoff, now); err != nil {
			return apperr.New(apperr.Invalid, "%s", err.Error())
		}
		totals, err := s.q.StakingTotals(ctx, tx)
		if err != nil {
			return err
		}
		ratio := staking.TVLRatioBps(totals.StakedUnits, totals.CirculatingUnits)
		prems, err := s.stakingPremiums(ctx, tx)
		if err != nil {
			return err
		}
		apys := curve.APYsWith(ratio, prems)
		rates := make([]int64, len(apys))
		tiers := make([]string, len(apys))
		for i, a := range apys {
			rates[i], tiers[i] = a.APYBps, string(a.Tier.ID)
		}
		due, err := s.q.StakingRewardDue(ctx, tx, tegdb.StakingRewardDueParams{ApyBps: rates, Tiers: tiers, Cutoff: cutoff.UTC()})
		if err != nil {
			return err
		}
		tk := balKey{ledger.AccountTreasury, ledger.BucketLiquid}
		bal, err := s.readBalances(ctx, tx, map[balKey]struct{}{tk: {}}, false)
		if err != nil {
			return err
		}
		var treasury int64
		if b := bal[tk]; b != nil {
			treasury = max(b.available(), 0)
		}
		num, den := staking.PayFactor(due.DueUnits, treasury)
		if _, err := s.q.RewardRunInsert(ctx, tx, tegdb.RewardRunInsertParams{
			RunDate: d, Cutoff: cutoff.UTC(), TvlRatioBps: ratio, ApyBps: rates, DueUnits: due.DueUnits,
			TreasuryStartUnits: treasury, PayNum: num, PayDen: den, Now: now,
		}); err != nil {
			return err
		}
		r, err := s.q.RewardRunGet(ctx, tx, d)
		if err != nil {
			return err
		}
		out = runFromRow(r)
		return nil
	})
	return out, err
}

// rewardPayload is StakingRewardPaid's payload.
type rewardPayload struct {
	Date           string `json:"date"`
	PositionID     int64  `json:"position_id"`
	RewardUnits    int64  `json:"reward_units"`
	OwnerUnits     int64  `json:"owner_units"`
	Validator      string `json:"validator,omitempty"`
	ValidatorUnits int64  `json:"validator_units,omitempty"`
	APYBps         int64  `json:"apy_bps"`
	Compounded     bool   `json:"compounded,omitempty"`
}

// PayRewardPage pays date's rewards to the next page of up to limit
// positions after afterID (keyset by id), in one transaction: per position
// one journal entry (treasury → owner's staked bucket when auto-compounding,
// else liquid; the validator's commission to its liquid), one
// staking_rewards row keyed (date, position) and one StakingRewardPaid
// event keyed reward-<date>-<position>. Rewards round down; a position whose
// reward rounds to zero is skipped. Pages of one date serialize on the run
// row and skip positions already paid that date, so a retried, duplicated
// or resumed page pays every position exactly once. When the treasury
// cannot cover the page (it was drained after the run started), the page
// is cut pro rata to what is left and the cut is recorded as shortfall.
func (s *Store) PayRewardPage(ctx context.Context, date string, afterID int64, limit int) (staking.RewardPage, error) {
	d, err := parseRunDate(date)
	if err != nil {
		return staking.RewardPage{}, err
	}
	if limit <= 0 || limit > MaxRewardPage {
		return staking.RewardPage{}, apperr.New(apperr.Invalid, "page size must be 1..%d", MaxRewardPage)
	}
	now := s.clock()
	var out staking.RewardPage
	err = s.db.Tx(ctx, func(tx pgx.Tx) error {
		out = staking.RewardPage{LastID: afterID}
		row, err := s.q.RewardRunLock(ctx, tx, d)
		if err != nil {
			return db.NotFound(err, "the reward run of %s has not started", date)
		}
		run := runFromRow(row)
		if run.Completed {
			out.Done = true
			return nil
		}
		rows, err := s.q.RewardPageSelect(ctx, tx, tegdb.RewardPageSelectParams{AfterID: afterID, Cutoff: run.Cutoff, RunDate: d, MaxRows: int32(limit)})
		if err != nil {
			return err
		}
		out.Examined = len(rows)
		if len(rows) > 0 {
			out.LastID = rows[len(rows)-1].ID
		}
		if len(rows) < limit {
			// FOR UPDATE drops rows that changed under the lock wait, so a
			// short page does not prove the end: ask.
			more, err := s.q.RewardPageMore(ctx, tx, tegdb.RewardPageMoreParams{AfterID: out.LastID, Cutoff: run.Cutoff, RunDate: d})
			if err != nil {
				return err
			}
			out.Done = !more
		}
		if len(rows) == 0 {
			return nil
		}
		return s.payRewards(ctx, tx, d, run, rows, now, &out)
	})
	if err == nil {
		// Prometheus counters are float64: an approximate observability
		// figure only; the money itself stays int64 in the ledger.
		stakingPaidUnits.WithLabelValues(s.outbox.Registry).Add(float64(out.PaidUnits))
		stakingPaidPositions.WithLabelValues(s.outbox.Registry).Add(float64(out.Paid))
	}
	return out, err
}

type reward struct {
	row         *tegdb.RewardPageSelectRow
	apy, amount int64
}

func (s *Store) payRewards(ctx context.Context, tx pgx.Tx, d pgtype.Date, run staking.RewardRun, rows []tegdb.RewardPageSelectRow, now time.Time, out *staking.RewardPage) error {
	rewards := make([]reward, 0, len(rows))
	var total int64
	treasuryKey := balKey{ledger.AccountTreasury, ledger.BucketLiquid}
	keys := map[balKey]struct{}{treasuryKey: {}}
	for i := range rows {
		r := &rows[i]
		idx := staking.TierIndex(staking.TierID(r.Tier))
		if idx < 0 || idx >= len(run.APYBps) {
			return fmt.Errorf("ledgerstore: position %d has unknown tier %q", r.ID, r.Tier)
		}
		full, err := staking.DailyReward(r.PrincipalUnits, run.APYBps[idx])
		if err != nil {
			return err
		}
		amt, err := staking.ProRata(full, run.PayNum, run.PayDen)
		if err != nil {
			return err
		}
		if amt == 0 {
			continue
		}
		if total, err = money.Add(total, amt); err != nil {
			return err
		}
		rewards = append(rewards, reward{row: r, apy: run.APYBps[idx], amount: amt})
		keys[ownerRewardKey(r)] = struct{}{}
		if r.Validator != nil && r.CommissionBps > 0 {
			keys[balKey{*r.Validator, ledger.BucketLiquid}] = struct{}{}
		}
	}
	if len(rewards) == 0 {
		return nil
	}
	locked, err := s.lockBalances(ctx, tx, keys)
	if err != nil {
		return err
	}
	tb := locked[treasuryKey]
	if tb == nil {
		return fmt.Errorf("ledgerstore: treasury balance missing")
	}
	var short int64
	if avail := max(tb.available(), 0); total > avail {
		// The treasury was drained after the run started: pay what is
		// left, pro rata, and record the rest as shortfall.
		var cut int64
		kept := rewards[:0]
		for _, rw := range rewards {
			if rw.amount, err = money.MulDivDown(rw.amount, avail, total); err != nil {
				return err
			}
			if rw.amount > 0 {
				cut += rw.amount
				kept = append(kept, rw)
			}
		}
		short, rewards, total = total-cut, kept, cut
	}
	journal := make([]tegdb.StakingJournalCopyParams, 0, len(rewards))
	paid := make([]tegdb.StakingRewardsCopyParams, 0, len(rewards))
	envs := make([]events.Envelope, 0, len(rewards))
	var compoundIDs, compoundUnits []int64
	for _, rw := range rewards {
		r := rw.row
		var ownerUnits, valUnits int64 = rw.amount, 0
		if r.Validator != nil {
			if ownerUnits, valUnits, err = staking.Split(rw.amount, r.CommissionBps); err != nil {
				return err
			}
		}
		ok := ownerRewardKey(r)
		postings := make([]ledger.Posting, 0, 3)
		postings = append(postings, ledger.Posting{Account: ledger.AccountTreasury, Bucket: ledger.BucketLiquid, Delta: -rw.amount})
		if ownerUnits > 0 {
			postings = append(postings, ledger.Posting{Account: r.Owner, Bucket: ok.bucket, Delta: ownerUnits})
			if err := credit(locked, ok, ownerUnits); err != nil {
				return err
			}
		}
		if valUnits > 0 {
			vk := balKey{*r.Validator, ledger.BucketLiquid}
			postings = append(postings, ledger.Posting{Account: vk.account, Bucket: vk.bucket, Delta: valUnits})
			if err := credit(locked, vk, valUnits); err != nil {
				return err
			}
		}
		tb.newUnits -= rw.amount
		id, err := newID()
		if err != nil {
			return err
		}
		je := tegdb.StakingJournalCopyParams{ID: id, Kind: "staking_reward", CreatedAt: now}
		for _, p := range postings {
			je.Accounts = append(je.Accounts, p.Account)
			je.Buckets = append(je.Buckets, p.Bucket)
			je.Deltas = append(je.Deltas, p.Delta)
		}
		journal = append(journal, je)
		paid = append(paid, tegdb.StakingRewardsCopyParams{
			RunDate: d, PositionID: r.ID, Owner: r.Owner, Validator: r.Validator, RewardUnits: rw.amount, OwnerUnits: ownerUnits,
			ValidatorUnits: valUnits, ApyBps: rw.apy, Compounded: r.AutoCompound, JournalID: id, CreatedAt: now,
		})
		if r.AutoCompound && ownerUnits > 0 {
			compoundIDs = append(compoundIDs, r.ID)
			compoundUnits = append(compoundUnits, ownerUnits)
		}
		p := rewardPayload{Date: run.Date, PositionID: r.ID, RewardUnits: rw.amount, OwnerUnits: ownerUnits,
			ValidatorUnits: valUnits, APYBps: rw.apy, Compounded: r.AutoCompound}
		if r.Validator != nil {
			p.Validator = *r.Validator
		}
		env, err := newEvent(EventStakingRewardPaid, "reward-"+run.Date+"-"+itoa(r.ID), r.Owner, now, postings, p)
		if err != nil {
			return err
		}
		envs = append(envs, env)
	}
	if tb.newUnits < 0 {
		return fmt.Errorf("ledgerstore: reward page would overdraw the treasury")
	}
	if _, err := s.q.StakingJournalCopy(ctx, tx, journal); err != nil {
		return mapConstraint(err)
	}
	if _, err := s.q.StakingRewardsCopy(ctx, tx, paid); err != nil {
		return err
	}
	if len(compoundIDs) > 0 {
		if err := s.q.StakePositionsCompound(ctx, tx, tegdb.StakePositionsCompoundParams{Ids: compoundIDs, AddUnits: compoundUnits, Now: now}); err != nil {
			return err
		}
	}
	if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
		return err
	}
	if err := s.writeEvents(ctx, tx, envs); err != nil {
		return err
	}
	if err := s.q.RewardRunAddPaid(ctx, tx, tegdb.RewardRunAddPaidParams{RunDate: d, PaidUnits: total, PaidPositions: int64(len(rewards)), ShortfallUnits: short}); err != nil {
		return err
	}
	out.Paid, out.PaidUnits, out.ShortUnits = len(rewards), total, short
	return nil
}

func ownerRewardKey(r *tegdb.RewardPageSelectRow) balKey {
	if r.AutoCompound {
		return balKey{r.Owner, ledger.BucketStaked}
	}
	return balKey{r.Owner, ledger.BucketLiquid}
}

func credit(locked map[balKey]*lockedBalance, k balKey, units int64) error {
	b := locked[k]
	if b == nil {
		return apperr.New(apperr.Internal, "balance %s/%s missing for a staking reward", k.account, k.bucket)
	}
	var err error
	if b.newUnits, err = money.Add(b.newUnits, units); err != nil {
		return apperr.New(apperr.Internal, "staking reward would overflow %s/%s", k.account, k.bucket)
	}
	return nil
}

// FinishRewardRun marks date's run completed (idempotent) and returns its
// totals. The shortfall (the day's pro-rata cut plus any mid-run cut) is
// published as staking_reward_shortfall_units, the alert's input.
func (s *Store) FinishRewardRun(ctx context.Context, date string) (staking.RewardRun, error) {
	d, err := parseRunDate(date)
	if err != nil {
		return staking.RewardRun{}, err
	}
	now := s.clock()
	var out staking.RewardRun
	var first bool
	err = s.db.Tx(ctx, func(tx pgx.Tx) error {
		r, err := s.q.RewardRunLock(ctx, tx, d)
		if err != nil {
			return db.NotFound(err, "the reward run of %s has not started", date)
		}
		first = r.Status != "completed"
		if first {
			if err := s.q.RewardRunComplete(ctx, tx, tegdb.RewardRunCompleteParams{RunDate: d, Now: now}); err != nil {
				return err
			}
			r.Status, r.CompletedAt = "completed", &now
		}
		out = runFromRow(r)
		return nil
	})
	if err != nil {
		return out, err
	}
	// Shortfall of the day = what was due minus what was paid, when the
	// run was pro-rated or cut; rounding dust of a fully covered day is
	// not a shortfall.
	short := out.ShortfallUnits
	if out.PayNum < out.PayDen {
		short = max(out.DueUnits-out.PaidUnits, short)
	}
	out.ShortfallUnits = short
	if first {
		stakingShortfall.WithLabelValues(s.outbox.Registry).Set(float64(short))
		if out.Short() {
			stakingShortRuns.WithLabelValues(s.outbox.Registry).Inc()
			s.log.Warn("staking reward run paid pro rata: the treasury could not cover the day",
				"date", date, "due_units", out.DueUnits, "paid_units", out.PaidUnits, "shortfall_units", short)
		}
	}
	return out, nil
}

// RewardRun returns date's run (NotFound).
func (s *Store) RewardRun(ctx context.Context, date string) (staking.RewardRun, error) {
	d, err := parseRunDate(date)
	if err != nil {
		return staking.RewardRun{}, err
	}
	r, err := s.q.RewardRunGet(ctx, s.pool, d)
	if err != nil {
		return staking.RewardRun{}, db.NotFound(err, "no reward run for %s", date)
	}
	return runFromRow(r), nil
}

// Reward is one paid (date, position) reward.
type Reward struct {
	Date           string
	PositionID     int64
	Owner          string
	Validator      string
	RewardUnits    int64
	OwnerUnits     int64
	ValidatorUnits int64
	APYBps         int64
	Compounded     bool
	JournalID      uuid.UUID
	CreatedAt      time.Time
}

// RewardCursor is a position in an agent's reward history (newest first).
type RewardCursor struct {
	Date       string
	PositionID int64
}

// Rewards pages agent's reward history, as owner or as validator, newest
// first, before cursor (zero: from the newest).
func (s *Store) Rewards(ctx context.Context, agent string, before RewardCursor, limit int) ([]Reward, error) {
	bd := pgtype.Date{InfinityModifier: pgtype.Infinity, Valid: true}
	if before.Date != "" {
		var err error
		if bd, err = parseRunDate(before.Date); err != nil {
			return nil, err
		}
	}
	rows, err := s.q.StakingRewardsByOwner(ctx, s.pool, tegdb.StakingRewardsByOwnerParams{
		Agent: agent, BeforeDate: bd, BeforePosition: before.PositionID, MaxRows: int32(clampPage(limit)),
	})
	if err != nil {
		return nil, err
	}
	out := make([]Reward, len(rows))
	for i, r := range rows {
		out[i] = Reward{Date: r.RunDate.Time.Format(staking.DateLayout), PositionID: r.PositionID, Owner: r.Owner,
			RewardUnits: r.RewardUnits, OwnerUnits: r.OwnerUnits, ValidatorUnits: r.ValidatorUnits, APYBps: r.ApyBps,
			Compounded: r.Compounded, JournalID: r.JournalID, CreatedAt: r.CreatedAt.UTC()}
		if r.Validator != nil {
			out[i].Validator = *r.Validator
		}
	}
	return out, nil
}
