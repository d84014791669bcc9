package ledgerstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// Staking events and their idempotency keys.
const (
	EventTokensStaked      = events.TypeTokensStaked      // stake-<position>
	EventUnstakeRequested  = events.TypeUnstakeRequested  // unstake-requested-<position>
	EventTokensUnstaked    = events.TypeTokensUnstaked    // unstake-<position>
	EventStakingRewardPaid = events.TypeStakingRewardPaid // reward-<date>-<position>
	EventStakeSlashed      = events.TypeStakeSlashed      // slash-<case>-<position>
	EventDelegationChanged = events.TypeDelegationChanged // delegation-<position>-<n>
	EventValidatorUpdated  = events.TypeValidatorUpdated  // validator-<did>-<unix µs>
	EventStakeMatured      = events.TypeStakeMatured      // matured-<position>
)

// MaxStakingPage bounds list pages.
const MaxStakingPage = 200

// Position is a stake.
type Position struct {
	ID             int64
	Owner          string
	Tier           staking.TierID
	PrincipalUnits int64 // in the owner's staked bucket now (grows by compounding)
	StakedUnits    int64 // the original stake
	AutoCompound   bool
	Validator      string // "" when not delegated
	Status         staking.PositionStatus
	UnlockAt       *time.Time // term end of a locked tier
	MaturedAt      *time.Time // when the lock's expiry was recorded (StakeMatured); nil before
	CreatedAt      time.Time
	UpdatedAt      time.Time
	ClosedAt       *time.Time
	Replayed       bool
}

func positionFromRow(r tegdb.StakePosition) Position {
	p := Position{
		ID: r.ID, Owner: r.Owner, Tier: staking.TierID(r.Tier), PrincipalUnits: r.PrincipalUnits, StakedUnits: r.StakedUnits,
		AutoCompound: r.AutoCompound, Status: staking.PositionStatus(r.Status), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.Validator != nil {
		p.Validator = *r.Validator
	}
	if r.UnlockAt != nil {
		t := r.UnlockAt.UTC()
		p.UnlockAt = &t
	}
	if r.ClosedAt != nil {
		t := r.ClosedAt.UTC()
		p.ClosedAt = &t
	}
	if r.MaturedAt != nil {
		t := r.MaturedAt.UTC()
		p.MaturedAt = &t
	}
	return p
}

// state is what the position state machine (staking.Transition) needs.
func (p Position) state() staking.PositionState {
	st := staking.PositionState{Status: p.Status, Matured: p.MaturedAt != nil}
	if p.UnlockAt != nil {
		st.UnlockAt = *p.UnlockAt
	}
	return st
}

// StakeRequest stakes AmountUnits of Owner's liquid balance.
type StakeRequest struct {
	Owner          string
	Tier           string
	AmountUnits    int64
	AutoCompound   bool
	Validator      string // optional: delegate to this validator at once
	IdempotencyKey string // (owner, key) is unique
}

type positionPayload struct {
	PositionID     int64      `json:"position_id"`
	Owner          string     `json:"owner"`
	Tier           string     `json:"tier"`
	AmountUnits    int64      `json:"amount_units"`
	AutoCompound   bool       `json:"auto_compound,omitempty"`
	Validator      string     `json:"validator,omitempty"`
	UnlockAt       *time.Time `json:"unlock_at,omitempty"`
	ReleasesAt     *time.Time `json:"releases_at,omitempty"`
	PenaltyUnits   int64      `json:"penalty_units,omitempty"`
	CaseID         string     `json:"case_id,omitempty"`
	PrevValidator  string     `json:"previous_validator,omitempty"`
	CommissionBps  *int64     `json:"commission_bps,omitempty"`
	AcceptingStake *bool      `json:"accepting,omitempty"`
}

// Stake moves req.AmountUnits from the owner's liquid (available) balance
// to its staked bucket and opens a position (journal entry "stake", event
// TokensStaked), in one transaction. Errors: Invalid (tier, amount below
// 10 AVT, account kinds, key), NotFound (owner missing), FailedPrecondition
// (validator not accepting delegation), InsufficientFunds,
// IdempotencyReuse (same key, different request). A replay returns the
// original position with Replayed set.
func (s *Store) Stake(ctx context.Context, req StakeRequest) (Position, error) {
	tier, err := staking.TierByID(req.Tier)
	if err != nil {
		return Position{}, apperr.New(apperr.Invalid, "tier: %s", err.Error())
	}
	if err := stakerAccount("owner", req.Owner); err != nil {
		return Position{}, err
	}
	if err := ledger.ValidateAmount(req.AmountUnits); err != nil {
		return Position{}, apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if req.AmountUnits < staking.MinStakeUnits {
		return Position{}, apperr.New(apperr.Invalid, "the minimum stake is %s", money.Format(staking.MinStakeUnits))
	}
	if err := validateClientKey(req.IdempotencyKey); err != nil {
		return Position{}, err
	}
	if req.Validator != "" {
		if err := stakerAccount("validator", req.Validator); err != nil {
			return Position{}, err
		}
		if req.Validator == req.Owner {
			return Position{}, apperr.New(apperr.Invalid, "an agent cannot delegate to itself")
		}
	}
	if p, found, err := s.stakeReplay(ctx, s.pool, req); found || err != nil {
		return p, err
	}
	now := s.clock()
	var out Position
	err = s.db.Tx(ctx, func(tx pgx.Tx) error {
		p, found, err := s.stakeReplay(ctx, tx, req)
		if found || err != nil {
			out = p
			return err
		}
		out, err = s.applyStake(ctx, tx, req, tier, now)
		return err
	})
	if err != nil && isUniqueViolation(err, "stake_positions_client_key") {
		return s.Stake(ctx, req) // a concurrent twin committed first: answer as a replay
	}
	return out, err
}

func stakerAccount(field, id string) error {
	k, err := ledger.KindOf(id)
	if err != nil {
		return apperr.New(apperr.Invalid, "%s: %s", field, err.Error())
	}
	if k != ledger.KindAgent {
		return apperr.New(apperr.Invalid, "%s: %q is a %s account; only agents stake", field, id, k)
	}
	return nil
}

func (s *Store) stakeReplay(ctx context.Context, q tegdb.DBTX, req StakeRequest) (Position, bool, error) {
	row, err := s.q.StakePositionByKey(ctx, q, tegdb.StakePositionByKeyParams{Owner: req.Owner, ClientKey: req.IdempotencyKey})
	if db.IsNotFound(err) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, err
	}
	p := positionFromRow(row)
	// The validator is compared with the position's current delegation:
	// the stake's own until the owner re-delegates. After that a replay
	// naming the old validator is refused too, as its original answer (a
	// position delegated to that validator) is no longer true.
	if string(p.Tier) != req.Tier || p.StakedUnits != req.AmountUnits || p.AutoCompound != req.AutoCompound || p.Validator != req.Validator {
		return Position{}, true, apperr.New(apperr.IdempotencyReuse, "idempotency key %q was already used for a different stake", req.IdempotencyKey)
	}
	p.Replayed = true
	return p, true, nil
}

func (s *Store) applyStake(ctx context.Context, tx pgx.Tx, req StakeRequest, tier staking.Tier, now time.Time) (Position, error) {
	if req.Validator != "" {
		if err := s.checkValidator(ctx, tx, req.Validator); err != nil {
			return Position{}, err
		}
	}
	if _, err := s.q.AccountGet(ctx, tx, req.Owner); err != nil {
		return Position{}, db.NotFound(err, "account %q not found on this registry", req.Owner)
	}
	if err := s.q.BalanceEnsure(ctx, tx, tegdb.BalanceEnsureParams{AccountID: req.Owner, Bucket: ledger.BucketStaked, Now: now}); err != nil {
		return Position{}, err
	}
	liquid, staked := balKey{req.Owner, ledger.BucketLiquid}, balKey{req.Owner, ledger.BucketStaked}
	locked, err := s.lockBalances(ctx, tx, map[balKey]struct{}{liquid: {}, staked: {}})
	if err != nil {
		return Position{}, err
	}
	l, st := locked[liquid], locked[staked]
	if l == nil || st == nil {
		return Position{}, apperr.New(apperr.NotFound, "account %q not found on this registry", req.Owner)
	}
	if l.available() < req.AmountUnits {
		return Position{}, apperr.New(apperr.InsufficientFunds, "available balance of %s is %s, the stake needs %s",
			req.Owner, money.Format(l.available()), money.Format(req.AmountUnits))
	}
	l.newUnits -= req.AmountUnits
	if st.newUnits, err = money.Add(st.newUnits, req.AmountUnits); err != nil {
		return Position{}, apperr.New(apperr.Invalid, "the stake would overflow the staked balance")
	}
	if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
		return Position{}, err
	}
	var unlock *time.Time
	if tier.Locked() {
		t := tier.UnlockAt(now)
		unlock = &t
	}
	var validator *string
	if req.Validator != "" {
		validator = &req.Validator
	}
	row, err := s.q.StakePositionInsert(ctx, tx, tegdb.StakePositionInsertParams{
		Owner: req.Owner, Tier: string(tier.ID), AmountUnits: req.AmountUnits, AutoCompound: req.AutoCompound,
		Validator: validator, UnlockAt: unlock, ClientKey: req.IdempotencyKey, Now: now,
	})
	if err != nil {
		return Position{}, err
	}
	p := positionFromRow(row)
	postings := []ledger.Posting{
		{Account: req.Owner, Bucket: ledger.BucketLiquid, Delta: -req.AmountUnits},
		{Account: req.Owner, Bucket: ledger.BucketStaked, Delta: req.AmountUnits},
	}
	if err := s.journal(ctx, tx, "stake", postings, now); err != nil {
		return Position{}, err
	}
	env, err := newEvent(EventTokensStaked, "stake-"+itoa(p.ID), p.Owner, now, postings, positionPayload{
		PositionID: p.ID, Owner: p.Owner, Tier: string(p.Tier), AmountUnits: p.StakedUnits, AutoCompound: p.AutoCompound,
		Validator: p.Validator, UnlockAt: p.UnlockAt,
	})
	if err != nil {
		return Position{}, err
	}
	return p, s.outbox.Write(ctx, tx, env)
}

// journal writes one balanced journal entry.
func (s *Store) journal(ctx context.Context, tx pgx.Tx, kind string, postings []ledger.Posting, now time.Time) error {
	if err := ledger.ValidatePostings(postings); err != nil {
		return apperr.Wrap(err, apperr.Internal, "unbalanced %s entry", kind)
	}
	id, err := newID()
	if err != nil {
		return err
	}
	p := tegdb.JournalEntryInsertParams{ID: id, Kind: kind, Now: now}
	for _, l := range postings {
		p.Accounts = append(p.Accounts, l.Account)
		p.Buckets = append(p.Buckets, l.Bucket)
		p.Deltas = append(p.Deltas, l.Delta)
	}
	return mapConstraint(s.q.JournalEntryInsert(ctx, tx, p))
}

// Position returns position id (NotFound).
func (s *Store) Position(ctx context.Context, id int64) (Position, error) {
	row, err := s.q.StakePositionGet(ctx, s.pool, id)
	if err != nil {
		return Position{}, db.NotFound(err, "position %d not found", id)
	}
	return positionFromRow(row), nil
}

// Positions pages owner's positions by id (after: the last id of the
// previous page). limit is clamped to 1..MaxStakingPage.
func (s *Store) Positions(ctx context.Context, owner string, after int64, limit int) ([]Position, error) {
	rows, err := s.q.StakePositionsByOwner(ctx, s.pool, tegdb.StakePositionsByOwnerParams{Owner: owner, AfterID: after, MaxRows: int32(clampPage(limit))})
	if err != nil {
		return nil, err
	}
	out := make([]Position, len(rows))
	for i, r := range rows {
		out[i] = positionFromRow(r)
	}
	return out, nil
}

func clampPage(limit int) int {
	if limit <= 0 {
		return DefaultPageSize
	}
	return min(limit, MaxStakingPage)
}

// UnstakeRequest is a flexible position's pending (or settled) unstake.
type UnstakeRequest struct {
	PositionID  int64
	Owner       string
	AmountUnits int64
	Status      staking.UnstakeStatus
	RequestedAt time.Time
	ReleasesAt  time.Time
	CompletedAt *time.Time
	Replayed    bool
}

func unstakeFromRow(r tegdb.UnstakeRequest) UnstakeRequest {
	u := UnstakeRequest{PositionID: r.PositionID, Owner: r.Owner, AmountUnits: r.AmountUnits, Status: staking.UnstakeStatus(r.Status),
		RequestedAt: r.RequestedAt.UTC(), ReleasesAt: r.ReleasesAt.UTC()}
	if r.CompletedAt != nil {
		t := r.CompletedAt.UTC()
		u.CompletedAt = &t
	}
	return u
}

// UnstakeResult says what an unstake did: a locked position past its term
// is closed at once (Request nil); a flexible one starts its cooldown
// (Request set; the caller starts the cooldown workflow).
type UnstakeResult struct {
	Position Position
	Request  *UnstakeRequest
}

// Unstake unstakes position id on behalf of owner. A flexible position
// enters its 7-day cooldown (event UnstakeRequested; it stops earning); a
// second call returns the same request (Replayed). A locked position
// before its term end is refused (FailedPrecondition, nothing written);
// after it, the principal returns to liquid at once (TokensUnstaked).
// Errors: NotFound (no such position of owner), FailedPrecondition
// (locked, closed, slashed).
func (s *Store) Unstake(ctx context.Context, owner string, id int64) (UnstakeResult, error) {
	now := s.clock()
	var out UnstakeResult
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.StakePositionLock(ctx, tx, id)
		if err != nil || row.Owner != owner {
			return db.NotFound(pgx.ErrNoRows, "position %d not found", id)
		}
		p := positionFromRow(row)
		step, terr := staking.Transition(p.state(), staking.OpUnstake, now)
		switch {
		case errors.Is(terr, staking.ErrNotActive): // closed or slashed
			if r, err := s.q.UnstakeRequestGet(ctx, tx, id); err == nil {
				u := unstakeFromRow(r) // a completed cooldown: the same request, replayed
				u.Replayed = true
				out = UnstakeResult{Position: p, Request: &u}
				return nil
			}
			return apperr.New(apperr.FailedPrecondition, "position %d is already %s", id, p.Status)
		case errors.Is(terr, staking.ErrLocked):
			return apperr.New(apperr.FailedPrecondition, "position %d is locked in the %s tier until %s; locked tiers are committed until term end",
				id, p.Tier, p.UnlockAt.Format(time.RFC3339))
		case terr != nil:
			return apperr.Wrap(terr, apperr.Internal, "unstake position %d", id)
		}
		switch step.Effect {
		case staking.NoEffect: // cooling down already: the same request
			r, err := s.q.UnstakeRequestGet(ctx, tx, id)
			if err != nil {
				return err
			}
			u := unstakeFromRow(r)
			u.Replayed = true
			out = UnstakeResult{Position: p, Request: &u}
			return nil
		case staking.ReturnPrincipal: // a locked tier past its term
			out.Position, err = s.closePosition(ctx, tx, p, "unstake-"+itoa(id), step.To, now)
			return err
		case staking.StartCooldown:
		default:
			return apperr.New(apperr.Internal, "unstake of position %d: unexpected step %s", id, step.Effect)
		}
		releases := step.ReleasesAt
		r, err := s.q.UnstakeRequestInsert(ctx, tx, tegdb.UnstakeRequestInsertParams{
			PositionID: id, Owner: owner, AmountUnits: p.PrincipalUnits, ReleasesAt: releases, Now: now,
		})
		if err != nil {
			return err
		}
		if err := s.q.StakePositionSetCooldown(ctx, tx, tegdb.StakePositionSetCooldownParams{ID: id, Now: now}); err != nil {
			return err
		}
		p.Status, p.UpdatedAt = step.To, now
		u := unstakeFromRow(r)
		out = UnstakeResult{Position: p, Request: &u}
		env, err := newEvent(EventUnstakeRequested, "unstake-requested-"+itoa(id), owner, now, nil, positionPayload{
			PositionID: id, Owner: owner, Tier: string(p.Tier), AmountUnits: p.PrincipalUnits, ReleasesAt: &u.ReleasesAt,
		})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

// closePosition returns the whole principal of p (locked by the caller)
// to the owner's liquid bucket and closes it with status (TokensUnstaked,
// keyed key).
func (s *Store) closePosition(ctx context.Context, tx pgx.Tx, p Position, key string, status staking.PositionStatus, now time.Time) (Position, error) {
	amount := p.PrincipalUnits
	liquid, staked := balKey{p.Owner, ledger.BucketLiquid}, balKey{p.Owner, ledger.BucketStaked}
	locked, err := s.lockBalances(ctx, tx, map[balKey]struct{}{liquid: {}, staked: {}})
	if err != nil {
		return Position{}, err
	}
	l, st := locked[liquid], locked[staked]
	if l == nil || st == nil || st.newUnits < amount {
		return Position{}, apperr.New(apperr.Internal, "staked balance of %s does not cover position %d", p.Owner, p.ID)
	}
	st.newUnits -= amount
	if l.newUnits, err = money.Add(l.newUnits, amount); err != nil {
		return Position{}, apperr.New(apperr.Invalid, "unstake would overflow the liquid balance of %s", p.Owner)
	}
	if err := s.applyBalances(ctx, tx, locked, 0, now); err != nil {
		return Position{}, err
	}
	if err := s.q.StakePositionClose(ctx, tx, tegdb.StakePositionCloseParams{ID: p.ID, Status: string(status), Now: now}); err != nil {
		return Position{}, err
	}
	postings := []ledger.Posting{
		{Account: p.Owner, Bucket: ledger.BucketStaked, Delta: -amount},
		{Account: p.Owner, Bucket: ledger.BucketLiquid, Delta: amount},
	}
	if err := s.journal(ctx, tx, "unstake", postings, now); err != nil {
		return Position{}, err
	}
	env, err := newEvent(EventTokensUnstaked, key, p.Owner, now, postings, positionPayload{
		PositionID: p.ID, Owner: p.Owner, Tier: string(p.Tier), AmountUnits: amount,
	})
	if err != nil {
		return Position{}, err
	}
	if err := s.outbox.Write(ctx, tx, env); err != nil {
		return Position{}, err
	}
	p.Status, p.PrincipalUnits, p.UpdatedAt, p.ClosedAt = status, 0, now, &now
	return p, nil
}

// CompleteUnstake ends position id's cooldown: the principal returns to
// liquid (TokensUnstaked) and the request completes. Idempotent: a settled
// request is returned as it is (Replayed); a position slashed during its
// cooldown has nothing left to release. Refused (FailedPrecondition)
// before the cooldown ends.
func (s *Store) CompleteUnstake(ctx context.Context, id int64) (UnstakeRequest, error) {
	now := s.clock()
	var out UnstakeRequest
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.StakePositionLock(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "position %d not found", id)
		}
		r, err := s.q.UnstakeRequestGet(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "position %d has no unstake request", id)
		}
		out = unstakeFromRow(r)
		p := positionFromRow(row)
		st := p.state()
		st.Request, st.ReleasesAt = out.Status, out.ReleasesAt
		step, err := staking.Transition(st, staking.OpRelease, now)
		switch {
		case errors.Is(err, staking.ErrCooldownRunning):
			return apperr.New(apperr.FailedPrecondition, "the cooldown of position %d ends at %s", id, out.ReleasesAt.Format(time.RFC3339))
		case err != nil:
			return apperr.Wrap(err, apperr.Internal, "release position %d", id)
		case step.Effect == staking.NoEffect:
			out.Replayed = true
			return nil
		}
		if _, err := s.closePosition(ctx, tx, p, "unstake-"+itoa(id), step.To, now); err != nil {
			return err
		}
		if err := s.q.UnstakeRequestSettle(ctx, tx, tegdb.UnstakeRequestSettleParams{PositionID: id, Status: string(staking.UnstakeCompleted), Now: now}); err != nil {
			return err
		}
		out.Status, out.CompletedAt = staking.UnstakeCompleted, &now
		return nil
	})
	return out, err
}

// UnstakeRequests pages owner's unstake requests by position id.
func (s *Store) UnstakeRequests(ctx context.Context, owner string, after int64, limit int) ([]UnstakeRequest, error) {
	rows, err := s.q.UnstakeRequestsByOwner(ctx, s.pool, tegdb.UnstakeRequestsByOwnerParams{Owner: owner, AfterID: after, MaxRows: int32(clampPage(limit))})
	if err != nil {
		return nil, err
	}
	out := make([]UnstakeRequest, len(rows))
	for i, r := range rows {
		out[i] = unstakeFromRow(r)
	}
	return out, nil
}

// CompleteDueUnstakes completes up to limit pending requests whose cooldown
// has ended: the safety net for a cooldown workflow that was never started
// (Temporal down at request time). It returns how many it completed.
func (s *Store) CompleteDueUnstakes(ctx context.Context, limit int) (int, error) {
	ids, err := s.q.UnstakeRequestsDue(ctx, s.pool, tegdb.UnstakeRequestsDueParams{Now: s.clock(), MaxRows: int32(min(max(limit, 1), 1000))})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		u, err := s.CompleteUnstake(ctx, id)
		if err != nil {
			return n, err
		}
		if !u.Replayed {
			n++
		}
	}
	return n, nil
}

// ReleaseUnstake is CompleteUnstake for the cooldown workflow's activity.
func (s *Store) ReleaseUnstake(ctx context.Context, positionID int64) error {
	_, err := s.CompleteUnstake(ctx, positionID)
	return err
}

// --- validators and delegation --------------------------------------------

// Validator is an agent accepting delegated stake.
type Validator struct {
	AgentDID       string
	CommissionBps  int64
	Accepting      bool
	DelegatedUnits int64 // Σ active principal delegated to it (lists only)
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// SetValidator registers or updates agentDID as a validator with its
// reward share (commission) and whether it accepts new delegations
// (event ValidatorUpdated). The commission applies from the next reward
// run. Errors: Invalid, NotFound (no such account).
func (s *Store) SetValidator(ctx context.Context, agentDID string, commissionBps int64, accepting bool) (Validator, error) {
	if err := stakerAccount("validator", agentDID); err != nil {
		return Validator{}, err
	}
	if commissionBps < 0 || commissionBps > staking.BpsPerWhole {
		return Validator{}, apperr.New(apperr.Invalid, "commission_bps must be 0..10000")
	}
	now := s.clock()
	var out Validator
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := s.q.AccountGet(ctx, tx, agentDID); err != nil {
			return db.NotFound(err, "account %q not found on this registry", agentDID)
		}
		r, err := s.q.StakingValidatorUpsert(ctx, tx, tegdb.StakingValidatorUpsertParams{AgentDid: agentDID, CommissionBps: int32(commissionBps), Accepting: accepting, Now: now})
		if err != nil {
			return err
		}
		out = Validator{AgentDID: r.AgentDid, CommissionBps: int64(r.CommissionBps), Accepting: r.Accepting, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
		env, err := newEvent(EventValidatorUpdated, "validator-"+agentDID+"-v"+itoa(r.Version), agentDID, now, nil, positionPayload{
			Owner: agentDID, CommissionBps: &out.CommissionBps, AcceptingStake: &out.Accepting,
		})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

// Validators pages the registered validators by DID.
func (s *Store) Validators(ctx context.Context, after string, limit int) ([]Validator, error) {
	rows, err := s.q.StakingValidators(ctx, s.pool, tegdb.StakingValidatorsParams{After: after, MaxRows: int32(clampPage(limit))})
	if err != nil {
		return nil, err
	}
	out := make([]Validator, len(rows))
	for i, r := range rows {
		out[i] = Validator{AgentDID: r.AgentDid, CommissionBps: int64(r.CommissionBps), Accepting: r.Accepting,
			DelegatedUnits: r.DelegatedUnits, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	}
	return out, nil
}

func (s *Store) checkValidator(ctx context.Context, tx pgx.Tx, did string) error {
	v, err := s.q.StakingValidatorGet(ctx, tx, did)
	if db.IsNotFound(err) {
		return apperr.New(apperr.FailedPrecondition, "%s is not a validator on this registry", did)
	}
	if err != nil {
		return err
	}
	if !v.Accepting {
		return apperr.New(apperr.FailedPrecondition, "validator %s does not accept delegation", did)
	}
	return nil
}

// Delegate delegates owner's open position id to validator ("" removes the
// delegation); from the next reward run the validator keeps its commission
// of the position's rewards. The stake itself never leaves the owner's
// staked bucket. Event DelegationChanged. Errors: NotFound, Invalid,
// FailedPrecondition (validator not accepting, position closed).
func (s *Store) Delegate(ctx context.Context, owner string, id int64, validator string) (Position, error) {
	if validator != "" {
		if err := stakerAccount("validator", validator); err != nil {
			return Position{}, err
		}
		if validator == owner {
			return Position{}, apperr.New(apperr.Invalid, "an agent cannot delegate to itself")
		}
	}
	now := s.clock()
	var out Position
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.StakePositionLock(ctx, tx, id)
		if err != nil || row.Owner != owner {
			return db.NotFound(pgx.ErrNoRows, "position %d not found", id)
		}
		p := positionFromRow(row)
		if _, err := staking.Transition(p.state(), staking.OpDelegate, now); err != nil {
			return apperr.New(apperr.FailedPrecondition, "position %d is %s; only active positions can be delegated", id, p.Status)
		}
		if p.Validator == validator {
			out = p
			out.Replayed = true
			return nil
		}
		if validator != "" {
			if err := s.checkValidator(ctx, tx, validator); err != nil {
				return err
			}
		}
		var v *string
		if validator != "" {
			v = &validator
		}
		version, err := s.q.StakePositionSetValidator(ctx, tx, tegdb.StakePositionSetValidatorParams{ID: id, Validator: v, Now: now})
		if err != nil {
			return err
		}
		prev := p.Validator
		p.Validator, p.UpdatedAt = validator, now
		out = p
		env, err := newEvent(EventDelegationChanged, "delegation-"+itoa(id)+"-v"+itoa(version), owner, now, nil, positionPayload{
			PositionID: id, Owner: owner, Tier: string(p.Tier), AmountUnits: p.PrincipalUnits, Validator: validator, PrevValidator: prev,
		})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

// APY is the live rate table.
type APY struct {
	StakedUnits      int64
	CirculatingUnits int64
	TVLRatioBps      int64
	Tiers            []staking.TierAPY
}

// StakingAPY computes every tier's APY from this registry's current TVL
// ratio (Σ staked / Σ circulating) through curve.
func (s *Store) StakingAPY(ctx context.Context, curve staking.Curve) (APY, error) {
	t, err := s.q.StakingTotals(ctx, s.pool)
	if err != nil {
		return APY{}, err
	}
	r := staking.TVLRatioBps(t.StakedUnits, t.CirculatingUnits)
	prems, err := s.stakingPremiums(ctx, s.pool)
	if err != nil {
		return APY{}, err
	}
	return APY{StakedUnits: t.StakedUnits, CirculatingUnits: t.CirculatingUnits, TVLRatioBps: r, Tiers: curve.APYsWith(r, prems)}, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
