package ledgerstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// Governance events (keys next to each). The ledger writes them because
// the proposals, the power they snapshot (stake positions) and the
// parameters they change all live in this database, so a state change and
// its event share one transaction.
const (
	EventProposalCreated = "ProposalCreated" // proposal-<id>
	EventVoteCast        = "VoteCast"        // vote-<id>-<voter>-<version>
	EventVoteDelegated   = "VoteDelegated"   // delegate-<delegator>-<version>
	EventProposalTallied = "ProposalTallied" // tally-<id>
	EventProposalVetoed  = "ProposalVetoed"  // veto-<id>
	EventProposalEnacted = "ProposalEnacted" // enact-<id>
)

// Proposal is a governance proposal.
type Proposal struct {
	ID           uuid.UUID
	Proposer     string
	Title        string
	Body         string
	Window       time.Duration
	QuorumBps    int64
	ThresholdBps int64
	Change       *governance.Change
	State        string
	OpensAt      time.Time
	ClosesAt     time.Time
	Electorate   int64 // Σ snapshot power
	Voters       int   // snapshot rows
	VetoWindow   time.Duration
	Tally        *ProposalTally // nil until tallied
	EnactAfter   *time.Time
	EnactedAt    *time.Time
	VetoedAt     *time.Time
	VetoActor    string
	VetoReason   string
	CreatedAt    time.Time
	Replayed     bool // the operation had already happened; nothing written
}

// ProposalTally is a proposal's recorded tally.
type ProposalTally struct {
	At                time.Time
	Yes, No, Abstain  int64
	QuorumMet, Passed bool
	Direct, Delegated int
}

func proposalFromRow(r tegdb.GovernanceProposal) (Proposal, error) {
	p := Proposal{
		ID: r.ID, Proposer: r.Proposer, Title: r.Title, Body: r.Body, Window: time.Duration(r.WindowSeconds) * time.Second,
		QuorumBps: r.QuorumBps, ThresholdBps: r.ThresholdBps, State: r.State, OpensAt: r.OpensAt, ClosesAt: r.ClosesAt,
		Electorate: r.Electorate, Voters: int(r.Voters), VetoWindow: time.Duration(r.VetoSeconds) * time.Second,
		EnactAfter: r.EnactAfter, EnactedAt: r.EnactedAt, VetoedAt: r.VetoedAt, CreatedAt: r.CreatedAt,
	}
	if r.Change != nil {
		c, err := governance.DecodeChange(r.Change)
		if err != nil {
			return Proposal{}, err
		}
		p.Change = &c
	}
	if r.TalliedAt != nil {
		t := &ProposalTally{At: *r.TalliedAt, QuorumMet: r.QuorumMet.Bool}
		if r.YesPower != nil {
			t.Yes = *r.YesPower
		}
		if r.NoPower != nil {
			t.No = *r.NoPower
		}
		if r.AbstainPower != nil {
			t.Abstain = *r.AbstainPower
		}
		t.Passed = r.State == governance.StatePassed || r.State == governance.StateEnacted || r.State == governance.StateVetoed
		p.Tally = t
	}
	if r.VetoActor != nil {
		p.VetoActor = *r.VetoActor
	}
	if r.VetoReason != nil {
		p.VetoReason = *r.VetoReason
	}
	return p, nil
}

type proposalPayload struct {
	ProposalID   uuid.UUID          `json:"proposal_id"`
	Proposer     string             `json:"proposer"`
	Title        string             `json:"title"`
	WindowSecs   int64              `json:"window_seconds"`
	QuorumBps    int64              `json:"quorum_bps"`
	ThresholdBps int64              `json:"threshold_bps"`
	Change       *governance.Change `json:"change,omitempty"`
	ClosesAt     time.Time          `json:"closes_at"`
	Electorate   int64              `json:"electorate"`
	Voters       int                `json:"voters"`
}

type votePayload struct {
	ProposalID uuid.UUID `json:"proposal_id"`
	Voter      string    `json:"voter"`
	Choice     string    `json:"choice"`
	Version    int32     `json:"version"`
}

type delegationPayload struct {
	Delegator string `json:"delegator"`
	Delegate  string `json:"delegate,omitempty"` // "": revoked
	Version   int64  `json:"version"`
}

type tallyPayload struct {
	ProposalID   uuid.UUID  `json:"proposal_id"`
	Electorate   int64      `json:"electorate"`
	Turnout      int64      `json:"turnout"`
	Yes          int64      `json:"yes"`
	No           int64      `json:"no"`
	Abstain      int64      `json:"abstain"`
	QuorumMet    bool       `json:"quorum_met"`
	Passed       bool       `json:"passed"`
	Direct       int        `json:"direct_voters"`
	Delegated    int        `json:"delegated_voters"`
	EnactAfter   *time.Time `json:"enact_after,omitempty"`
	QuorumBps    int64      `json:"quorum_bps"`
	ThresholdBps int64      `json:"threshold_bps"`
}

type enactPayload struct {
	ProposalID uuid.UUID         `json:"proposal_id"`
	Change     governance.Change `json:"change"`
	Previous   any               `json:"previous"`
}

type vetoPayload struct {
	ProposalID uuid.UUID `json:"proposal_id"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason"`
}

// FeeCurve returns the governed fee curve in force.
func (s *Store) FeeCurve(ctx context.Context) (ledger.FeeCurve, error) {
	return s.feeCurve(ctx, s.pool)
}

func (s *Store) feeCurve(ctx context.Context, q tegdb.DBTX) (ledger.FeeCurve, error) {
	r, err := s.q.GovernedFeeCurveGet(ctx, q)
	if err != nil {
		return ledger.FeeCurve{}, fmt.Errorf("ledgerstore: governed fee curve: %w", err)
	}
	c := ledger.FeeCurve{BaseBps: r.BaseBps, MaxBps: r.MaxBps}
	if err := c.Validate(); err != nil { // the table's CHECK makes this unreachable
		return ledger.FeeCurve{}, fmt.Errorf("ledgerstore: stored fee curve: %w", err)
	}
	return c, nil
}

// StakingPremiums returns every tier's governed APY premium in force.
func (s *Store) StakingPremiums(ctx context.Context) (map[staking.TierID]int64, error) {
	return s.stakingPremiums(ctx, s.pool)
}

func (s *Store) stakingPremiums(ctx context.Context, q tegdb.DBTX) (map[staking.TierID]int64, error) {
	rows, err := s.q.GovernedStakingPremiums(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("ledgerstore: governed staking premiums: %w", err)
	}
	out := make(map[staking.TierID]int64, len(rows))
	for _, r := range rows {
		out[staking.TierID(r.Tier)] = r.PremiumBps
	}
	return out, nil
}

// stakesFor converts open positions to governance stakes as of now.
func stakesFor(owners []string, tiers []string, units []int64, unlocks []*time.Time, now time.Time) ([]governance.Stake, error) {
	out := make([]governance.Stake, 0, len(owners))
	for i := range owners {
		o, ok := governance.OptionByName(tiers[i])
		if !ok {
			return nil, fmt.Errorf("ledgerstore: tier %q has no lock option", tiers[i])
		}
		st := governance.Stake{Voter: owners[i], Units: units[i], Option: o}
		if unlocks[i] != nil {
			st.Remaining = unlocks[i].Sub(now)
		}
		out = append(out, st)
	}
	return out, nil
}

// VotingPower is a voter's live power: what a proposal opened now would
// snapshot.
type VotingPower struct {
	Voter      string
	Own        int64
	Delegate   string // to whom Own is delegated ("" nobody)
	Received   int64  // delegated to this voter (one hop), over at most MaxDelegators
	Delegators int
	Positions  int
}

// MaxDelegators bounds the delegators VotingPower adds up.
const MaxDelegators = 1000

// ownPower is one voter's power now (grouping by voter).
func (s *Store) ownPower(ctx context.Context, q tegdb.DBTX, did string, now time.Time) (int64, int, error) {
	rows, err := s.q.GovernanceStakesOpenByOwner(ctx, q, did)
	if err != nil {
		return 0, 0, err
	}
	var owners, tiers []string
	var units []int64
	var unlocks []*time.Time
	for _, r := range rows {
		owners, tiers, units, unlocks = append(owners, r.Owner), append(tiers, r.Tier), append(units, r.PrincipalUnits), append(unlocks, r.UnlockAt)
	}
	st, err := stakesFor(owners, tiers, units, unlocks, now)
	if err != nil {
		return 0, 0, err
	}
	pw, err := governance.VoterPowers(st, governance.ByVoter)
	if err != nil {
		return 0, 0, err
	}
	return pw[did], len(rows), nil
}

// VotingPowerOf returns did's live voting power.
func (s *Store) VotingPowerOf(ctx context.Context, did string) (VotingPower, error) {
	now := s.clock()
	out := VotingPower{Voter: did}
	own, n, err := s.ownPower(ctx, s.pool, did, now)
	if err != nil {
		return out, err
	}
	out.Own, out.Positions = own, n
	d, err := s.q.GovernanceDelegationGet(ctx, s.pool, did)
	switch {
	case err == nil:
		if d.Delegate != nil {
			out.Delegate = *d.Delegate
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return out, err
	}
	from, err := s.q.GovernanceDelegationsTo(ctx, s.pool, tegdb.GovernanceDelegationsToParams{Delegate: &did, MaxRows: MaxDelegators})
	if err != nil {
		return out, err
	}
	for _, f := range from {
		p, _, err := s.ownPower(ctx, s.pool, f, now)
		if err != nil {
			return out, err
		}
		out.Received += p // each a part of the registry's power, which fits
	}
	out.Delegators = len(from)
	return out, nil
}

// ProposalInput is a proposal to open.
type ProposalInput struct {
	ID         uuid.UUID
	Proposer   string
	Draft      governance.Draft // validated by the caller against its limits
	MinPower   int64            // the proposer's own power must reach it
	VetoWindow time.Duration
	// Developers, when not nil, groups stake by developer for the √
	// (governance.ByDeveloper): agent → developer. Agents missing from it
	// (e.g. staked after the map was read) are grouped alone.
	Developers map[string]string
}

// GovernanceStakeOwners lists every agent holding voting power now.
func (s *Store) GovernanceStakeOwners(ctx context.Context) ([]string, error) {
	return s.q.GovernanceStakeOwners(ctx, s.pool)
}

// CreateProposal opens a proposal: it snapshots every voter's power and
// delegate as of now, checks the proposer's own power against MinPower,
// and writes the proposal, its snapshot and ProposalCreated in one
// transaction (repeatable read, so the positions and delegations are read
// at one instant). A proposal with the same ID and proposer is returned as
// it is (Replayed). Errors: Invalid (the draft), FailedPrecondition (the
// proposer's power is below the minimum; nothing written).
func (s *Store) CreateProposal(ctx context.Context, in ProposalInput) (Proposal, error) {
	if err := in.Draft.Validate(governance.Limits{
		MinWindow: time.Second, MaxWindow: 365 * 24 * time.Hour, MinQuorumBps: 1, MinThreshold: 5000,
	}); err != nil {
		return Proposal{}, apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if in.ID == uuid.Nil || in.Proposer == "" || in.VetoWindow < 0 {
		return Proposal{}, apperr.New(apperr.Invalid, "proposal needs an id, a proposer and a non-negative veto window")
	}
	now := s.clock()
	var out Proposal
	err := s.db.TxOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		// The ID derives from the request (proposer + Idempotency-Key), so
		// a retried request finds its proposal instead of opening another.
		if prev, err := s.q.GovernanceProposalGet(ctx, tx, in.ID); err == nil {
			if prev.Proposer != in.Proposer {
				return apperr.New(apperr.Conflict, "proposal %s exists with another proposer", in.ID)
			}
			out, err = proposalFromRow(prev)
			out.Replayed = true
			return err
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		closes := now.Add(in.Draft.Window)
		var err error
		if out, err = s.openProposalTx(ctx, tx, in, now, closes); err != nil {
			return err
		}
		env, err := newEvent(EventProposalCreated, "proposal-"+in.ID.String(), in.Proposer, now, nil, proposalPayload{
			ProposalID: in.ID, Proposer: in.Proposer, Title: in.Draft.Title, WindowSecs: int64(in.Draft.Window / time.Second),
			QuorumBps: in.Draft.QuorumBps, ThresholdBps: in.Draft.ThresholdBps, Change: in.Draft.Change,
			ClosesAt: closes, Electorate: out.Electorate, Voters: out.Voters,
		})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

// openProposalTx snapshots every voter's power and delegate as of now
// (tx is repeatable read), checks the proposer's own power against
// in.MinPower, and inserts the proposal open until closes with its
// snapshot. It writes no event: its callers do.
func (s *Store) openProposalTx(ctx context.Context, tx pgx.Tx, in ProposalInput, now, closes time.Time) (Proposal, error) {
	rows, err := s.q.GovernanceStakesOpen(ctx, tx)
	if err != nil {
		return Proposal{}, err
	}
	owners, tiers, units, unlocks := make([]string, len(rows)), make([]string, len(rows)), make([]int64, len(rows)), make([]*time.Time, len(rows))
	for i, r := range rows {
		owners[i], tiers[i], units[i], unlocks[i] = r.Owner, r.Tier, r.PrincipalUnits, r.UnlockAt
	}
	st, err := stakesFor(owners, tiers, units, unlocks, now)
	if err != nil {
		return Proposal{}, err
	}
	grouping := governance.ByVoter
	if in.Developers != nil {
		grouping = governance.ByDeveloper
		for i := range st {
			st[i].Developer = in.Developers[st[i].Voter]
		}
	}
	powers, err := governance.VoterPowers(st, grouping)
	if err != nil {
		return Proposal{}, err
	}
	if own := powers[in.Proposer]; own < in.MinPower {
		return Proposal{}, apperr.New(apperr.FailedPrecondition, "a proposer needs voting power of at least %d from its own stake; %s has %d", in.MinPower, in.Proposer, own)
	}
	dels, err := s.q.GovernanceDelegationsAll(ctx, tx)
	if err != nil {
		return Proposal{}, err
	}
	delegateOf := make(map[string]string, len(dels))
	for _, d := range dels {
		if d.Delegate != nil {
			delegateOf[d.Delegator] = *d.Delegate
		}
	}
	voters := make([]string, 0, len(powers))
	for v := range powers {
		voters = append(voters, v)
	}
	slices.Sort(voters)
	pws, dlg := make([]int64, len(voters)), make([]string, len(voters))
	var electorate int64
	for i, v := range voters {
		pws[i], dlg[i] = powers[v], delegateOf[v]
		electorate += pws[i] // Σ of √ of parts of a supply that fits int64: fits
	}
	var change []byte
	if in.Draft.Change != nil {
		change = in.Draft.Change.Encode()
	}
	if err := s.q.GovernanceProposalInsert(ctx, tx, tegdb.GovernanceProposalInsertParams{
		ID: in.ID, Proposer: in.Proposer, Title: in.Draft.Title, Body: in.Draft.Body,
		WindowSeconds: int64(in.Draft.Window / time.Second), QuorumBps: in.Draft.QuorumBps, ThresholdBps: in.Draft.ThresholdBps,
		Change: change, Now: now, ClosesAt: closes, Electorate: electorate, Voters: int32(len(voters)),
		VetoSeconds: int64(in.VetoWindow / time.Second),
	}); err != nil {
		return Proposal{}, err
	}
	snap := make([]tegdb.GovernanceSnapshotCopyParams, len(voters))
	for i, v := range voters {
		snap[i] = tegdb.GovernanceSnapshotCopyParams{ProposalID: in.ID, Voter: v, Power: pws[i]}
		if dlg[i] != "" {
			snap[i].Delegate = &dlg[i]
		}
	}
	if _, err := s.q.GovernanceSnapshotCopy(ctx, tx, snap); err != nil {
		return Proposal{}, err
	}
	row, err := s.q.GovernanceProposalGet(ctx, tx, in.ID)
	if err != nil {
		return Proposal{}, err
	}
	return proposalFromRow(row)
}

// Proposal returns proposal id. Errors: NotFound.
func (s *Store) Proposal(ctx context.Context, id uuid.UUID) (Proposal, error) {
	r, err := s.q.GovernanceProposalGet(ctx, s.pool, id)
	if err != nil {
		return Proposal{}, db.NotFound(err, "proposal %s not found", id)
	}
	return proposalFromRow(r)
}

// MaxProposalsPage bounds a page of proposals.
const MaxProposalsPage = 100

// Proposals pages proposals newest first, optionally in one state,
// before the (created_at, id) cursor of the previous page's last row.
func (s *Store) Proposals(ctx context.Context, state string, before *Proposal, limit int) ([]Proposal, error) {
	p := tegdb.GovernanceProposalsPageParams{MaxRows: int32(min(max(limit, 1), MaxProposalsPage))}
	if state != "" {
		p.State = &state
	}
	if before != nil {
		p.BeforeAt, p.BeforeID = &before.CreatedAt, before.ID
	}
	rows, err := s.q.GovernanceProposalsPage(ctx, s.pool, p)
	if err != nil {
		return nil, err
	}
	out := make([]Proposal, 0, len(rows))
	for _, r := range rows {
		pr, err := proposalFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, pr)
	}
	return out, nil
}

// Vote is a direct vote.
type Vote struct {
	ProposalID uuid.UUID
	Voter      string
	Choice     governance.Choice
	Version    int
	CastAt     time.Time
	UpdatedAt  time.Time
	// The voter's weight in the proposal's snapshot.
	OwnPower, ReceivedPower int64
	Delegate                string // the voter's own delegate in the snapshot (overridden by this vote)
}

// CastVote records voter's direct vote on proposal id, or changes it, with
// VoteCast (vote-<id>-<voter>-<version>). Its first statement takes
// governance_votes in ROW EXCLUSIVE mode: votes never wait for each other
// (a share lock on the hot proposal row would make them queue on multixact
// updates), a tally's SHARE lock waits for the votes in flight, and a vote
// that waited for a tally reads the proposal after it, finds it tallied
// and is refused. Errors: NotFound (no proposal); FailedPrecondition
// (window ended or proposal tallied; the voter had no power in the
// snapshot, neither own nor delegated); Conflict (the same choice again).
func (s *Store) CastVote(ctx context.Context, id uuid.UUID, voter string, choice governance.Choice) (Vote, error) {
	return s.castVote(ctx, id, voter, choice, false)
}

// castVote is CastVote on a local proposal, or on a federation proposal
// (this registry's copy) when federation is set; a proposal of the other
// tier is refused.
func (s *Store) castVote(ctx context.Context, id uuid.UUID, voter string, choice governance.Choice, federation bool) (Vote, error) {
	if _, err := governance.ParseChoice(string(choice)); err != nil {
		return Vote{}, apperr.New(apperr.Invalid, "%s", err.Error())
	}
	now := s.clock()
	var out Vote
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		if err := s.q.GovernanceVotesLockForVote(ctx, tx); err != nil {
			return err
		}
		pr, err := s.q.GovernanceProposalGet(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "proposal %s not found", id)
		}
		if isFed, err := s.isFederation(ctx, tx, id); err != nil {
			return err
		} else if isFed != federation {
			if federation {
				return apperr.New(apperr.NotFound, "no federation proposal %s on this registry", id)
			}
			return apperr.New(apperr.Invalid, "proposal %s is a federation proposal: vote at /governance/federation/proposals/%s/vote", id, id)
		}
		if pr.State != governance.StateOpen || !now.Before(pr.ClosesAt) {
			return apperr.New(apperr.FailedPrecondition, "voting on proposal %s closed at %s", id, pr.ClosesAt.Format(time.RFC3339))
		}
		w, err := s.snapshotWeight(ctx, tx, id, voter)
		if err != nil {
			return err
		}
		if w.OwnPower == 0 && w.ReceivedPower == 0 {
			return apperr.New(apperr.FailedPrecondition, "%s has no voting power in proposal %s: it had no active stake and nothing delegated to it when the proposal opened", voter, id)
		}
		prev, err := s.q.GovernanceVoteGet(ctx, tx, tegdb.GovernanceVoteGetParams{ProposalID: id, Voter: voter})
		switch {
		case err == nil && prev.Choice == string(choice):
			return apperr.New(apperr.Conflict, "%s already voted %s on proposal %s; vote again with another choice to change it", voter, choice, id)
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		v, err := s.q.GovernanceVoteUpsert(ctx, tx, tegdb.GovernanceVoteUpsertParams{ProposalID: id, Voter: voter, Choice: string(choice), Now: now})
		if err != nil {
			return err
		}
		out = w
		out.Choice, out.Version, out.CastAt, out.UpdatedAt = choice, int(v.Version), v.CastAt, v.UpdatedAt
		env, err := newEvent(EventVoteCast, fmt.Sprintf("vote-%s-%s-%d", id, voter, v.Version), voter, now, nil, votePayload{
			ProposalID: id, Voter: voter, Choice: string(choice), Version: v.Version,
		})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

func (s *Store) snapshotWeight(ctx context.Context, q tegdb.DBTX, id uuid.UUID, voter string) (Vote, error) {
	out := Vote{ProposalID: id, Voter: voter}
	snap, err := s.q.GovernanceSnapshotGet(ctx, q, tegdb.GovernanceSnapshotGetParams{ProposalID: id, Voter: voter})
	switch {
	case err == nil:
		out.OwnPower = snap.Power
		if snap.Delegate != nil {
			out.Delegate = *snap.Delegate
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return out, err
	}
	rec, err := s.q.GovernanceSnapshotReceived(ctx, q, tegdb.GovernanceSnapshotReceivedParams{ProposalID: id, Delegate: &voter})
	if err != nil {
		return out, err
	}
	out.ReceivedPower = rec.Received
	return out, nil
}

// VoteOf returns voter's vote on proposal id with its snapshot weight.
// Errors: NotFound (no proposal, or no vote).
func (s *Store) VoteOf(ctx context.Context, id uuid.UUID, voter string) (Vote, error) {
	if _, err := s.q.GovernanceProposalGet(ctx, s.pool, id); err != nil {
		return Vote{}, db.NotFound(err, "proposal %s not found", id)
	}
	v, err := s.q.GovernanceVoteGet(ctx, s.pool, tegdb.GovernanceVoteGetParams{ProposalID: id, Voter: voter})
	if err != nil {
		return Vote{}, db.NotFound(err, "%s has not voted on proposal %s", voter, id)
	}
	out, err := s.snapshotWeight(ctx, s.pool, id, voter)
	if err != nil {
		return Vote{}, err
	}
	out.Choice, out.Version, out.CastAt, out.UpdatedAt = governance.Choice(v.Choice), int(v.Version), v.CastAt, v.UpdatedAt
	return out, nil
}

// Delegation is a delegator's current delegation of voting power.
type Delegation struct {
	Delegator string
	Delegate  string // "": revoked
	Version   int64
	UpdatedAt time.Time
}

// DelegateVotingPower delegates delegator's voting power to delegate ("" revokes),
// with VoteDelegated (delegate-<delegator>-<version>). It applies to
// proposals opened afterwards (each proposal snapshots delegations when it
// opens). Errors: Invalid (self, or not an agent DID); Conflict (already
// so: the same delegate again, or revoking nothing).
func (s *Store) DelegateVotingPower(ctx context.Context, delegator, delegate string) (Delegation, error) {
	if delegate == delegator {
		return Delegation{}, apperr.New(apperr.Invalid, "an agent cannot delegate its voting power to itself")
	}
	if delegate != "" {
		if k, err := ledger.KindOf(delegate); err != nil || k != ledger.KindAgent {
			return Delegation{}, apperr.New(apperr.Invalid, "delegate %q is not an agent DID", delegate)
		}
	}
	now := s.clock()
	var out Delegation
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		cur, err := s.q.GovernanceDelegationGet(ctx, tx, delegator)
		curDelegate := ""
		switch {
		case err == nil:
			if cur.Delegate != nil {
				curDelegate = *cur.Delegate
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if curDelegate == delegate {
			if delegate == "" {
				return apperr.New(apperr.Conflict, "%s has no delegation to revoke", delegator)
			}
			return apperr.New(apperr.Conflict, "%s already delegates its voting power to %s", delegator, delegate)
		}
		var dp *string
		if delegate != "" {
			dp = &delegate
		}
		r, err := s.q.GovernanceDelegationUpsert(ctx, tx, tegdb.GovernanceDelegationUpsertParams{Delegator: delegator, Delegate: dp, Now: now})
		if err != nil {
			return err
		}
		out = Delegation{Delegator: delegator, Delegate: delegate, Version: r.Version, UpdatedAt: r.UpdatedAt}
		env, err := newEvent(EventVoteDelegated, fmt.Sprintf("delegate-%s-%d", delegator, r.Version), delegator, now, nil, delegationPayload{
			Delegator: delegator, Delegate: delegate, Version: r.Version,
		})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

// TallyProposal tallies proposal id over its snapshot, once: it takes
// governance_votes in SHARE mode (the votes in flight, on any proposal,
// commit first; new ones wait and are then refused for this proposal),
// locks the proposal FOR UPDATE, counts, records the result and writes ProposalTallied
// (tally-<id>) in one transaction. A passed proposal with a change gets
// enact_after = now + its veto window. Tallying an already tallied
// proposal returns it as it is (Replayed). Errors: NotFound;
// FailedPrecondition (the window has not ended: the caller's timer ran
// ahead of this clock; retry).
func (s *Store) TallyProposal(ctx context.Context, id uuid.UUID) (Proposal, error) {
	now := s.clock()
	var out Proposal
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		if err := s.q.GovernanceVotesLockForTally(ctx, tx); err != nil {
			return err
		}
		row, err := s.q.GovernanceProposalLock(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "proposal %s not found", id)
		}
		if isFed, err := s.isFederation(ctx, tx, id); err != nil {
			return err
		} else if isFed {
			return apperr.New(apperr.Invalid, "proposal %s is a federation proposal, tallied by its own workflow", id)
		}
		if row.State != governance.StateOpen {
			out, err = proposalFromRow(row)
			out.Replayed = true
			return err
		}
		if now.Before(row.ClosesAt) {
			return apperr.New(apperr.FailedPrecondition, "proposal %s is open until %s", id, row.ClosesAt.Format(time.RFC3339Nano))
		}
		snapRows, err := s.q.GovernanceSnapshotAll(ctx, tx, id)
		if err != nil {
			return err
		}
		snap := make([]governance.SnapshotEntry, len(snapRows))
		for i, r := range snapRows {
			snap[i] = governance.SnapshotEntry{Voter: r.Voter, Power: r.Power}
			if r.Delegate != nil {
				snap[i].Delegate = *r.Delegate
			}
		}
		voteRows, err := s.q.GovernanceVotesAll(ctx, tx, id)
		if err != nil {
			return err
		}
		direct := make(map[string]governance.Choice, len(voteRows))
		for _, v := range voteRows {
			direct[v.Voter] = governance.Choice(v.Choice)
		}
		res, err := governance.Tally(snap, direct, governance.Rules{QuorumBps: row.QuorumBps, ThresholdBps: row.ThresholdBps})
		if err != nil {
			return err
		}
		state, enactAfter := tallyOutcome(res.Passed, row.Change != nil, time.Duration(row.VetoSeconds)*time.Second, now)
		if err := s.q.GovernanceProposalSetTally(ctx, tx, tegdb.GovernanceProposalSetTallyParams{
			ID: id, State: state, Now: now, YesPower: res.Yes, NoPower: res.No, AbstainPower: res.Abstain,
			QuorumMet: res.QuorumMet, EnactAfter: enactAfter,
		}); err != nil {
			return err
		}
		row.State, row.TalliedAt, row.YesPower, row.NoPower, row.AbstainPower = state, &now, &res.Yes, &res.No, &res.Abstain
		row.QuorumMet.Bool, row.QuorumMet.Valid, row.EnactAfter = res.QuorumMet, true, enactAfter
		if out, err = proposalFromRow(row); err != nil {
			return err
		}
		out.Tally.Direct, out.Tally.Delegated = res.Direct, res.Delegated
		env, err := newEvent(EventProposalTallied, "tally-"+id.String(), row.Proposer, now, nil, tallyPayload{
			ProposalID: id, Electorate: res.Electorate, Turnout: res.Turnout, Yes: res.Yes, No: res.No, Abstain: res.Abstain,
			QuorumMet: res.QuorumMet, Passed: res.Passed, Direct: res.Direct, Delegated: res.Delegated, EnactAfter: enactAfter,
			QuorumBps: row.QuorumBps, ThresholdBps: row.ThresholdBps,
		})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

// EnactProposal applies a passed proposal's change and writes
// ProposalEnacted (enact-<id>) in one transaction, once: an enacted
// proposal is returned as it is (Replayed). A vetoed proposal is never
// enacted (FailedPrecondition, which the workflow treats as final).
// Errors: NotFound; FailedPrecondition (not passed, no change, vetoed, or
// its veto window has not ended: retry later).
func (s *Store) EnactProposal(ctx context.Context, id uuid.UUID) (Proposal, error) {
	now := s.clock()
	var out Proposal
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.GovernanceProposalLock(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "proposal %s not found", id)
		}
		p, err := proposalFromRow(row)
		if err != nil {
			return err
		}
		switch {
		case p.State == governance.StateEnacted:
			out, out.Replayed = p, true
			return nil
		case p.State != governance.StatePassed || p.Change == nil:
			return apperr.New(apperr.FailedPrecondition, "proposal %s is %s; only a passed proposal with a change is enacted", id, p.State)
		case p.EnactAfter != nil && now.Before(*p.EnactAfter):
			return apperr.New(apperr.FailedPrecondition, "proposal %s is in its veto window until %s", id, p.EnactAfter.Format(time.RFC3339Nano))
		}
		var previous any
		switch p.Change.Kind {
		case governance.ChangeFeeCurve:
			prev, err := s.feeCurve(ctx, tx)
			if err != nil {
				return err
			}
			previous = prev
			if err := s.q.GovernedFeeCurveSet(ctx, tx, tegdb.GovernedFeeCurveSetParams{
				BaseBps: p.Change.FeeCurve.BaseBps, MaxBps: p.Change.FeeCurve.MaxBps, ProposalID: &id, Now: now,
			}); err != nil {
				return err
			}
		case governance.ChangeStakingPremium:
			prems, err := s.stakingPremiums(ctx, tx)
			if err != nil {
				return err
			}
			sp := p.Change.StakingPremium
			previous = governance.StakingPremium{Tier: sp.Tier, PremiumBps: prems[staking.TierID(sp.Tier)]}
			n, err := s.q.GovernedStakingPremiumSet(ctx, tx, tegdb.GovernedStakingPremiumSetParams{PremiumBps: sp.PremiumBps, ProposalID: &id, Now: now, Tier: sp.Tier})
			if err != nil {
				return err
			}
			if n != 1 {
				return fmt.Errorf("ledgerstore: no governed premium for tier %q", sp.Tier)
			}
		default: // DecodeChange validated the kind
			return fmt.Errorf("ledgerstore: no enactment for change %q", p.Change.Kind)
		}
		if err := s.q.GovernanceProposalSetEnacted(ctx, tx, tegdb.GovernanceProposalSetEnactedParams{ID: id, Now: now}); err != nil {
			return err
		}
		p.State, p.EnactedAt = governance.StateEnacted, &now
		out = p
		env, err := newEvent(EventProposalEnacted, "enact-"+id.String(), p.Proposer, now, nil, enactPayload{ProposalID: id, Change: *p.Change, Previous: previous})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

// VetoProposal stops a passed proposal before it is enacted, with
// ProposalVetoed (veto-<id>), once per proposal. Errors: NotFound;
// FailedPrecondition (not passed, or already enacted); Conflict (already
// vetoed).
func (s *Store) VetoProposal(ctx context.Context, id uuid.UUID, actor, reason string) (Proposal, error) {
	if reason == "" || len(reason) > 500 {
		return Proposal{}, apperr.New(apperr.Invalid, "a veto needs a reason of 1..500 bytes")
	}
	now := s.clock()
	var out Proposal
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.GovernanceProposalLock(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "proposal %s not found", id)
		}
		switch row.State {
		case governance.StateVetoed:
			return apperr.New(apperr.Conflict, "proposal %s was already vetoed", id)
		case governance.StatePassed:
		default:
			return apperr.New(apperr.FailedPrecondition, "proposal %s is %s; only a passed proposal not yet enacted can be vetoed", id, row.State)
		}
		if err := s.q.GovernanceProposalSetVetoed(ctx, tx, tegdb.GovernanceProposalSetVetoedParams{ID: id, Now: now, Actor: actor, Reason: reason}); err != nil {
			return err
		}
		row.State, row.VetoedAt, row.VetoActor, row.VetoReason = governance.StateVetoed, &now, &actor, &reason
		if out, err = proposalFromRow(row); err != nil {
			return err
		}
		env, err := newEvent(EventProposalVetoed, "veto-"+id.String(), row.Proposer, now, nil, vetoPayload{ProposalID: id, Actor: actor, Reason: reason})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

// ProposalsDue lists up to limit proposals whose tally workflow should be
// running: open past their window, or passed with a change past its veto
// window (the sweep's scan).
func (s *Store) ProposalsDue(ctx context.Context, limit int) ([]uuid.UUID, error) {
	return s.q.GovernanceProposalsDue(ctx, s.pool, tegdb.GovernanceProposalsDueParams{Now: s.clock(), MaxRows: int32(min(max(limit, 1), 1000))})
}

// parseProposalID accepts a proposal ID in its canonical UUID form.
func parseProposalID(id string) (uuid.UUID, error) {
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return uuid.Nil, apperr.New(apperr.Invalid, "proposal id %q is not a canonical UUID", clipID(id))
	}
	return u, nil
}

// tallyOutcome is the state a tallied proposal moves to and, for a passed
// proposal with a change to enact, when its veto window ends (local and
// federation tallies share the rule).
func tallyOutcome(passed, executable bool, veto time.Duration, now time.Time) (string, *time.Time) {
	if !passed {
		return governance.StateRejected, nil
	}
	if !executable {
		return governance.StatePassed, nil
	}
	t := now.Add(veto)
	return governance.StatePassed, &t
}
