package ledgerstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/ledger"
)

func (e *env) govSnapshot() string {
	e.t.Helper()
	var s string
	require.NoError(e.t, e.pool.QueryRow(e.ctx, `SELECT
		(SELECT count(*) FROM governance_proposals)::text || '/' ||
		(SELECT count(*) FROM governance_snapshots)::text || '/' ||
		(SELECT count(*) FROM governance_votes)::text || '/' ||
		(SELECT coalesce(string_agg(delegator || '>' || coalesce(delegate, '') || '@' || version, ',' ORDER BY delegator), '') FROM governance_delegations) || '/' ||
		(SELECT coalesce(string_agg(id || ':' || state, ',' ORDER BY id), '') FROM governance_proposals) || '/' ||
		(SELECT base_bps || '-' || max_bps FROM governed_fee_curve)`).Scan(&s))
	return e.snapshot() + "|" + s
}

func feeDraft(window time.Duration, base, max int64) governance.Draft {
	return governance.Draft{
		Title: "lower the fee", Body: "b", Window: window, QuorumBps: 5000, ThresholdBps: 6000,
		Change: &governance.Change{Kind: governance.ChangeFeeCurve, FeeCurve: &ledger.FeeCurve{BaseBps: base, MaxBps: max}},
	}
}

// The whole local flow on the real ledger: snapshot at open, votes with
// delegation, bad input refused writing nothing, one tally, enactment
// after the veto window, and the next transfer paying the new fee.
func TestGovernanceProposalLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	alice, bob, carol, dave := e.agent(1000*avt), e.agent(1000*avt), e.agent(1000*avt), e.agent(1000*avt)
	nostake := e.agent(100 * avt)
	e.stake(alice, "365d", 400*avt, false, "a")    // √ = 200000, power 200000
	e.stake(bob, "365d", 100*avt, false, "b")      // power 100000
	e.stake(carol, "365d", 100*avt, false, "c")    // power 100000, delegates to bob
	e.stake(dave, "flexible", 100*avt, false, "d") // power 1000

	pw, err := e.store.VotingPowerOf(e.ctx, alice)
	require.NoError(t, err)
	require.Equal(t, int64(200000), pw.Own)

	_, err = e.store.DelegateVotingPower(e.ctx, carol, bob)
	require.NoError(t, err)
	pb, err := e.store.VotingPowerOf(e.ctx, bob)
	require.NoError(t, err)
	require.Equal(t, int64(100000), pb.Received)

	// Refusals write nothing.
	before := e.govSnapshot()
	_, err = e.store.DelegateVotingPower(e.ctx, carol, bob)
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err))
	_, err = e.store.DelegateVotingPower(e.ctx, carol, carol)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	_, err = e.store.DelegateVotingPower(e.ctx, carol, "treasury")
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	_, err = e.store.CreateProposal(e.ctx, ledgerstore.ProposalInput{ID: uuid.New(), Proposer: nostake, Draft: feeDraft(time.Hour, 10, 200), MinPower: 1000, VetoWindow: time.Hour})
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "no stake, no proposal")
	bad := feeDraft(time.Hour, 300, 200)
	_, err = e.store.CreateProposal(e.ctx, ledgerstore.ProposalInput{ID: uuid.New(), Proposer: alice, Draft: bad, MinPower: 1000, VetoWindow: time.Hour})
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	_, err = e.store.CastVote(e.ctx, uuid.New(), alice, governance.Yes)
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	require.Equal(t, before, e.govSnapshot())

	id := uuid.New()
	p, err := e.store.CreateProposal(e.ctx, ledgerstore.ProposalInput{ID: id, Proposer: alice, Draft: feeDraft(time.Hour, 10, 200), MinPower: 1000, VetoWindow: 2 * time.Hour})
	require.NoError(t, err)
	require.Equal(t, governance.StateOpen, p.State)
	require.Equal(t, int64(401000), p.Electorate)
	require.Equal(t, 4, p.Voters)

	// Power bought after the snapshot does not count; a new delegation
	// does not move the snapshot either.
	late := e.agent(1000 * avt)
	e.stake(late, "365d", 900*avt, false, "l")
	_, err = e.store.DelegateVotingPower(e.ctx, dave, alice)
	require.NoError(t, err)

	before = e.govSnapshot()
	_, err = e.store.CastVote(e.ctx, id, late, governance.Yes)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "stake after the snapshot")
	_, err = e.store.CastVote(e.ctx, id, nostake, governance.Yes)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "no stake")
	_, err = e.store.CastVote(e.ctx, id, alice, governance.Choice("maybe"))
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	require.Equal(t, before, e.govSnapshot())

	v, err := e.store.CastVote(e.ctx, id, alice, governance.No)
	require.NoError(t, err)
	require.Equal(t, 1, v.Version)
	_, err = e.store.CastVote(e.ctx, id, alice, governance.No)
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err), "the same vote twice")
	v, err = e.store.CastVote(e.ctx, id, alice, governance.Yes) // changed
	require.NoError(t, err)
	require.Equal(t, 2, v.Version)
	v, err = e.store.CastVote(e.ctx, id, bob, governance.Yes) // carries carol's power
	require.NoError(t, err)
	require.Equal(t, int64(100000), v.ReceivedPower)
	_, err = e.store.CastVote(e.ctx, id, dave, governance.No)
	require.NoError(t, err)
	got, err := e.store.VoteOf(e.ctx, id, alice)
	require.NoError(t, err)
	require.Equal(t, governance.Yes, got.Choice)

	// Not yet: the tally refuses before the window's end.
	e.clock.Advance(time.Hour - time.Microsecond)
	_, err = e.store.TallyProposal(e.ctx, id)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	e.clock.Advance(time.Microsecond)
	before = e.govSnapshot()
	_, err = e.store.CastVote(e.ctx, id, bob, governance.No)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "after the window")
	require.Equal(t, before, e.govSnapshot())

	p, err = e.store.TallyProposal(e.ctx, id)
	require.NoError(t, err)
	require.False(t, p.Replayed)
	require.Equal(t, governance.StatePassed, p.State)
	require.Equal(t, int64(400000), p.Tally.Yes)
	require.Equal(t, int64(1000), p.Tally.No)
	require.Equal(t, 1, p.Tally.Delegated)
	again, err := e.store.TallyProposal(e.ctx, id)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, 1, e.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1`, "tally-"+id.String()))

	// The veto window holds the change back; the fee is still the default.
	_, err = e.store.EnactProposal(e.ctx, id)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	c, err := e.store.FeeCurve(e.ctx)
	require.NoError(t, err)
	require.Equal(t, ledger.DefaultFeeCurve, c)
	due, err := e.store.ProposalsDue(e.ctx, 10)
	require.NoError(t, err)
	require.Empty(t, due)

	e.clock.Advance(2 * time.Hour)
	due, err = e.store.ProposalsDue(e.ctx, 10)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{id}, due)
	p, err = e.store.EnactProposal(e.ctx, id)
	require.NoError(t, err)
	require.Equal(t, governance.StateEnacted, p.State)
	again, err = e.store.EnactProposal(e.ctx, id)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, 1, e.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1`, "enact-"+id.String()))
	_, err = e.store.VetoProposal(e.ctx, id, "admin:op", "too late")
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "an enacted proposal cannot be vetoed")

	// The next transfer pays the new base rate: 10 bps of 100 AVT.
	tr, err := e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: nostake, To: bob, AmountUnits: 100 * avt, IdempotencyKey: "after-enact"})
	require.NoError(t, err)
	require.Equal(t, int64(10), tr.FeeBps)
	require.Equal(t, 100*avt/1000, tr.FeeUnits)
	for _, typ := range []string{ledgerstore.EventProposalCreated, ledgerstore.EventVoteCast, ledgerstore.EventVoteDelegated, ledgerstore.EventProposalTallied, ledgerstore.EventProposalEnacted} {
		require.Positive(t, e.count(`SELECT count(*) FROM outbox WHERE event_type = $1`, typ), typ)
	}
	e.checkInvariants()
}

// A vetoed proposal is never enacted; a rejected one can be neither.
func TestGovernanceVetoAndRejection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	alice, bob := e.agent(1000*avt), e.agent(1000*avt)
	e.stake(alice, "180d", 400*avt, false, "a")
	e.stake(bob, "180d", 400*avt, false, "b")

	open := func(window time.Duration) uuid.UUID {
		id := uuid.New()
		_, err := e.store.CreateProposal(e.ctx, ledgerstore.ProposalInput{ID: id, Proposer: alice, Draft: feeDraft(window, 0, 100), MinPower: 1000, VetoWindow: time.Hour})
		require.NoError(t, err)
		return id
	}
	vetoed, rejected := open(time.Minute), open(time.Minute)
	for _, id := range []uuid.UUID{vetoed, rejected} {
		_, err := e.store.CastVote(e.ctx, id, alice, governance.Yes)
		require.NoError(t, err)
	}
	_, err := e.store.CastVote(e.ctx, rejected, bob, governance.No) // a tie: rejected
	require.NoError(t, err)
	_, err = e.store.VetoProposal(e.ctx, vetoed, "admin:op", "open")
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "an open proposal is not vetoed")
	e.clock.Advance(time.Minute)
	p, err := e.store.TallyProposal(e.ctx, vetoed)
	require.NoError(t, err)
	require.Equal(t, governance.StatePassed, p.State) // quorum 50 % exactly met by alice alone
	p, err = e.store.TallyProposal(e.ctx, rejected)
	require.NoError(t, err)
	require.Equal(t, governance.StateRejected, p.State)

	p, err = e.store.VetoProposal(e.ctx, vetoed, "admin:op", "threatens the supply invariant")
	require.NoError(t, err)
	require.Equal(t, governance.StateVetoed, p.State)
	_, err = e.store.VetoProposal(e.ctx, vetoed, "admin:op", "again")
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err))
	e.clock.Advance(2 * time.Hour)
	for _, id := range []uuid.UUID{vetoed, rejected} {
		_, err = e.store.EnactProposal(e.ctx, id)
		require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	}
	due, err := e.store.ProposalsDue(e.ctx, 10)
	require.NoError(t, err)
	require.Empty(t, due)
	c, err := e.store.FeeCurve(e.ctx)
	require.NoError(t, err)
	require.Equal(t, ledger.DefaultFeeCurve, c)
	e.checkInvariants()
}

// Votes racing the tally at the window's end: every vote the store
// accepted is in the tally, with the choice it accepted last, and every
// vote after the tally is refused.
func TestGovernanceVotesRacingTheTally(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{realClock: true})
	const n = 12
	voters := make([]string, n)
	for i := range voters {
		voters[i] = e.agent(100 * avt)
		e.stake(voters[i], "flexible", 100*avt, false, "s")
	}
	id := uuid.New()
	_, err := e.store.CreateProposal(e.ctx, ledgerstore.ProposalInput{ID: id, Proposer: voters[0], MinPower: 1, VetoWindow: 0,
		Draft: governance.Draft{Title: "race", Window: time.Second, QuorumBps: 1, ThresholdBps: 5000}})
	require.NoError(t, err)
	last := make([]governance.Choice, n)
	var wg sync.WaitGroup
	for i := range voters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				c := [2]governance.Choice{governance.Yes, governance.No}[k%2]
				_, err := e.store.CastVote(e.ctx, id, voters[i], c)
				if apperr.CodeOf(err) == apperr.FailedPrecondition {
					return
				}
				if err != nil {
					t.Errorf("vote: %v", err)
					return
				}
				last[i] = c
			}
		}()
	}
	var p ledgerstore.Proposal
	require.Eventually(t, func() bool {
		p, err = e.store.TallyProposal(e.ctx, id)
		return err == nil
	}, 30*time.Second, 5*time.Millisecond)
	wg.Wait()
	var yes, no int64
	for i, c := range last {
		require.NotEmpty(t, c, "voter %d voted at least once", i)
		if c == governance.Yes {
			yes += 1000
		} else {
			no += 1000
		}
	}
	require.Equal(t, yes, p.Tally.Yes)
	require.Equal(t, no, p.Tally.No)
}

// With the developer grouping, two agents of one developer splitting 200
// AVT have the power of one agent holding it; by agent they have √2 times
// more.
func TestGovernanceSnapshotByDeveloper(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b, c := e.agent(1000*avt), e.agent(1000*avt), e.agent(1000*avt)
	e.stake(a, "365d", 100*avt, false, "s")
	e.stake(b, "365d", 100*avt, false, "s")
	e.stake(c, "365d", 200*avt, false, "s")
	owners, err := e.store.GovernanceStakeOwners(e.ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{a, b, c}, owners)
	draft := governance.Draft{Title: "t", Window: time.Hour, QuorumBps: 100, ThresholdBps: 5000}
	power := func(id uuid.UUID, voter string) int64 {
		var p int64
		require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT power FROM governance_snapshots WHERE proposal_id = $1 AND voter = $2`, id, voter).Scan(&p))
		return p
	}
	byAgent, byDev := uuid.New(), uuid.New()
	_, err = e.store.CreateProposal(e.ctx, ledgerstore.ProposalInput{ID: byAgent, Proposer: c, Draft: draft, MinPower: 1})
	require.NoError(t, err)
	_, err = e.store.CreateProposal(e.ctx, ledgerstore.ProposalInput{ID: byDev, Proposer: c, Draft: draft, MinPower: 1,
		Developers: map[string]string{a: "dev-1", b: "dev-1", c: "dev-2"}})
	require.NoError(t, err)
	require.Equal(t, int64(200000), power(byAgent, a)+power(byAgent, b), "by agent: splitting gains √2")
	require.Equal(t, int64(141421), power(byAgent, c))
	require.Equal(t, int64(141420), power(byDev, a)+power(byDev, b), "by developer: no gain (⌊√(2·10^10)⌋ apportioned, rounded down)")
	require.Equal(t, int64(141421), power(byDev, c))
}
