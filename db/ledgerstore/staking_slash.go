package ledgerstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// SlashRequest is an enforcement slash of an agent's stake.
type SlashRequest struct {
	AgentDID string
	CaseID   string // the enforcement case: the idempotency key
	Reason   string
	Actor    string
}

// Slash is a committed slash.
type Slash struct {
	CaseID       string
	AgentDID     string
	Reason       string
	Actor        string
	Positions    int
	SlashedUnits int64 // Σ principal force-unstaked
	PenaltyUnits int64 // Σ penalties to the treasury
	CreatedAt    time.Time
	Replayed     bool
}

func slashFromRow(r tegdb.StakeSlash, replayed bool) Slash {
	return Slash{CaseID: r.CaseID, AgentDID: r.AgentDid, Reason: r.Reason, Actor: r.Actor, Positions: int(r.Positions),
		SlashedUnits: r.SlashedUnits, PenaltyUnits: r.PenaltyUnits, CreatedAt: r.CreatedAt.UTC(), Replayed: replayed}
}

// SlashStake force-unstakes every open position of the agent (active or
// cooling down), bypassing locks and cooldowns: per position, 10 % of the
// principal (rounded up) goes to the treasury and the rest to the agent's
// liquid balance, as one journal entry and one StakeSlashed event keyed
// slash-<case>-<position>, all in one transaction. Idempotent per case ID:
// a replay returns the recorded slash; the same case for another agent is
// IdempotencyReuse. An agent with no open positions is recorded with zero
// positions.
func (s *Store) SlashStake(ctx context.Context, req SlashRequest) (Slash, error) {
	if err := stakerAccount("agent", req.AgentDID); err != nil {
		return Slash{}, err
	}
	if !clientKeyPattern.MatchString(req.CaseID) {
		return Slash{}, apperr.New(apperr.Invalid, "case_id must be 1-200 characters of [A-Za-z0-9._:-]")
	}
	if req.Reason == "" {
		return Slash{}, apperr.New(apperr.Invalid, "reason is required")
	}
	if err := validateText("reason", req.Reason, MaxReasonBytes); err != nil {
		return Slash{}, err
	}
	now := s.clock()
	var out Slash
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		if r, err := s.q.StakeSlashGet(ctx, tx, req.CaseID); err == nil {
			if r.AgentDid != req.AgentDID {
				return apperr.New(apperr.IdempotencyReuse, "enforcement case %q already slashed another agent", req.CaseID)
			}
			out = slashFromRow(r, true)
			return nil
		} else if !db.IsNotFound(err) {
			return err
		}
		if _, err := s.q.AccountGet(ctx, tx, req.AgentDID); err != nil {
			return db.NotFound(err, "account %q not found on this registry", req.AgentDID)
		}
		rows, err := s.q.StakePositionsOpenByOwnerLock(ctx, tx, req.AgentDID)
		if err != nil {
			return err
		}
		out = Slash{CaseID: req.CaseID, AgentDID: req.AgentDID, Reason: req.Reason, Actor: req.Actor, Positions: len(rows), CreatedAt: now}
		if len(rows) > 0 {
			if err := s.slashPositions(ctx, tx, req, rows, now, &out); err != nil {
				return err
			}
		}
		return s.q.StakeSlashInsert(ctx, tx, tegdb.StakeSlashInsertParams{
			CaseID: req.CaseID, AgentDid: req.AgentDID, Reason: req.Reason, Actor: req.Actor, Positions: int32(out.Positions),
			SlashedUnits: out.SlashedUnits, PenaltyUnits: out.PenaltyUnits, Now: now,
		})
	})
	if err != nil && isUniqueViolation(err, "stake_slashes_pkey") {
		return s.SlashStake(ctx, req) // a concurrent twin committed first
	}
	return out, err
}

func (s *Store) slashPositions(ctx context.Context, tx pgx.Tx, req SlashRequest, rows []tegdb.StakePosition, now time.Time, out *Slash) error {
	agent := req.AgentDID
	staked, liquid, treasury := balKey{agent, ledger.BucketStaked}, balKey{agent, ledger.BucketLiquid}, balKey{ledger.AccountTreasury, ledger.BucketLiquid}
	locked, err := s.lockBalances(ctx, tx, map[balKey]struct{}{staked: {}, liquid: {}, treasury: {}})
	if err != nil {
		return err
	}
	st, l, tr := locked[staked], locked[liquid], locked[treasury]
	if st == nil || l == nil || tr == nil {
		return apperr.New(apperr.Internal, "balances of %s missing for a slash", agent)
	}
	for _, r := range rows {
		p := positionFromRow(r)
		step, err := staking.Transition(p.state(), staking.OpSlash, now)
		if err != nil {
			return apperr.Wrap(err, apperr.Internal, "slash position %d (%s)", p.ID, p.Status)
		}
		penalty, err := staking.SlashPenalty(p.PrincipalUnits)
		if err != nil {
			return err
		}
		rest := p.PrincipalUnits - penalty
		if st.newUnits < p.PrincipalUnits {
			return apperr.New(apperr.Internal, "staked balance of %s does not cover position %d", agent, p.ID)
		}
		st.newUnits -= p.PrincipalUnits
		if tr.newUnits, err = money.Add(tr.newUnits, penalty); err != nil {
			return err
		}
		postings := []ledger.Posting{
			{Account: agent, Bucket: ledger.BucketStaked, Delta: -p.PrincipalUnits},
			{Account: ledger.AccountTreasury, Bucket: ledger.BucketLiquid, Delta: penalty},
		}
		if rest > 0 {
			if l.newUnits, err = money.Add(l.newUnits, rest); err != nil {
				return err
			}
			postings = append(postings, ledger.Posting{Account: agent, Bucket: ledger.BucketLiquid, Delta: rest})
		}
		if err := s.journal(ctx, tx, "stake_slash", postings, now); err != nil {
			return err
		}
		if err := s.q.StakePositionClose(ctx, tx, tegdb.StakePositionCloseParams{ID: p.ID, Status: string(step.To), Now: now}); err != nil {
			return err
		}
		if p.Status == staking.PositionCooldown {
			if err := s.q.UnstakeRequestSettle(ctx, tx, tegdb.UnstakeRequestSettleParams{PositionID: p.ID, Status: string(staking.UnstakeSlashed), Now: now}); err != nil {
				return err
			}
		}
		env, err := newEvent(EventStakeSlashed, "slash-"+req.CaseID+"-"+itoa(p.ID), agent, now, postings, positionPayload{
			PositionID: p.ID, Owner: agent, Tier: string(p.Tier), AmountUnits: p.PrincipalUnits, PenaltyUnits: penalty, CaseID: req.CaseID,
		})
		if err != nil {
			return err
		}
		if err := s.outbox.Write(ctx, tx, env); err != nil {
			return err
		}
		out.SlashedUnits += p.PrincipalUnits
		out.PenaltyUnits += penalty
	}
	return s.applyBalances(ctx, tx, locked, 0, now)
}
