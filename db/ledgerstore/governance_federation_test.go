package ledgerstore_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/governance"
)

// The federation tier on two real ledgers (an origin and a peer) and one
// peer that never answers: elevation of a passed local proposal only, by
// its proposer, once; the peer joins with its own snapshot; votes go to
// the tier they belong to; the peer's local tally is signed, taken once
// and closes its votes; the origin keeps only a tally that verifies with
// the key pinned at announcement; the aggregate counts both registries and
// records the silent one as missing; a vetoed federation proposal is
// never enacted.
func TestGovernanceFederationLifecycle(t *testing.T) {
	t.Parallel()
	o, p := newEnv(t, envOpts{}), newEnv(t, envOpts{})
	_, originKey, _ := ed25519.GenerateKey(rand.Reader)
	peerPub, peerKey, _ := ed25519.GenerateKey(rand.Reader)
	alice, bob := o.agent(1000*avt), o.agent(1000*avt)
	o.stake(alice, "365d", 400*avt, false, "a") // power 200000
	o.stake(bob, "365d", 100*avt, false, "b")   // power 100000
	carol := p.agent(1000 * avt)
	p.stake(carol, "365d", 900*avt, false, "c") // power 300000 on the peer

	local := uuid.New()
	_, err := o.store.CreateProposal(o.ctx, ledgerstore.ProposalInput{ID: local, Proposer: alice, Draft: feeDraft(time.Hour, 10, 200), MinPower: 1000, VetoWindow: time.Hour})
	require.NoError(t, err)
	fid := uuid.New()
	peers := []ledgerstore.FederationPeer{{Registry: "peer", Via: ledgerstore.ViaFrame}, {Registry: "silent", Via: ledgerstore.ViaBridge}}
	elevate := func(actor string, peers []ledgerstore.FederationPeer) (ledgerstore.Proposal, error) {
		return o.store.Elevate(o.ctx, ledgerstore.ElevateInput{ID: fid, LocalProposal: local, Actor: actor, Registry: "origin", Frame: "alpha",
			Window: time.Hour, CollectWindow: 10 * time.Minute, VetoWindow: time.Hour, Peers: peers})
	}
	before := o.govSnapshot()
	_, err = elevate(alice, peers)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "an open proposal is not elevated")
	require.Equal(t, before, o.govSnapshot())
	_, err = o.store.CastVote(o.ctx, local, alice, governance.Yes)
	require.NoError(t, err)
	o.clock.Advance(time.Hour)
	_, err = o.store.TallyProposal(o.ctx, local)
	require.NoError(t, err)
	before = o.govSnapshot()
	_, err = elevate(bob, peers)
	require.Equal(t, apperr.Forbidden, apperr.CodeOf(err), "only its proposer elevates it")
	_, err = elevate(alice, nil)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "no peer")
	_, err = elevate(alice, []ledgerstore.FederationPeer{{Registry: "origin", Via: ledgerstore.ViaFrame}})
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "itself is no peer")
	require.Equal(t, before, o.govSnapshot(), "refusals write nothing")

	// Two elevations racing: one opens it, the other finds it.
	var wg sync.WaitGroup
	racing := make([]ledgerstore.Proposal, 2)
	errs := make([]error, 2)
	for i := range racing {
		wg.Add(1)
		go func() { defer wg.Done(); racing[i], errs[i] = elevate(alice, peers) }()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.True(t, racing[0].Replayed != racing[1].Replayed, "one opened it, the other replayed")
	fp := racing[0]
	require.Equal(t, governance.StateOpen, fp.State)
	require.InDelta(t, 300000, fp.Electorate, 100, "the origin's own snapshot, decayed by an hour")
	again, err := elevate(alice, peers)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, 1, o.count(`SELECT count(*) FROM outbox WHERE event_type = 'ProposalElevated'`))

	// The peer joins with its own snapshot, until the origin's closing time.
	join := ledgerstore.JoinInput{ID: fid, OriginRegistry: "origin", OriginFrame: "alpha", Proposer: alice, ClosesAt: fp.ClosesAt,
		Draft: governance.Draft{Title: fp.Title, Body: fp.Body, Window: fp.Window, QuorumBps: fp.QuorumBps, ThresholdBps: fp.ThresholdBps, Change: fp.Change}}
	p.clock.Advance(time.Hour) // both clocks at the same instant
	jp, err := p.store.JoinFederation(p.ctx, join)
	require.NoError(t, err)
	require.InDelta(t, 300000, jp.Electorate, 100, "the peer's own snapshot")
	jp, err = p.store.JoinFederation(p.ctx, join)
	require.NoError(t, err)
	require.True(t, jp.Replayed)
	other := join
	other.OriginRegistry = "impostor"
	_, err = p.store.JoinFederation(p.ctx, other)
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err))

	// Votes: each tier on its own route.
	_, err = o.store.CastVote(o.ctx, fid, bob, governance.No)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "a federation proposal on the local route")
	_, err = o.store.CastFederationVote(o.ctx, local, bob, governance.No)
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err), "a local proposal on the federation route")
	_, err = o.store.CastFederationVote(o.ctx, uuid.New(), bob, governance.No)
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	va, err := o.store.CastFederationVote(o.ctx, fid, alice, governance.Yes)
	require.NoError(t, err)
	_, err = o.store.CastFederationVote(o.ctx, fid, alice, governance.Yes)
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err), "twice")
	vb, err := o.store.CastFederationVote(o.ctx, fid, bob, governance.No)
	require.NoError(t, err)
	vc, err := p.store.CastFederationVote(p.ctx, fid, carol, governance.Yes)
	require.NoError(t, err)

	// The peer's tally: not before its window ends, only for the origin.
	_, err = p.store.PeerLocalTally(p.ctx, fid, "origin", "peer", peerKey)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	o.clock.Advance(time.Hour)
	p.clock.Advance(time.Hour)
	_, err = p.store.PeerLocalTally(p.ctx, fid, "impostor", "peer", peerKey)
	require.Equal(t, apperr.Forbidden, apperr.CodeOf(err))
	st, err := p.store.PeerLocalTally(p.ctx, fid, "origin", "peer", peerKey)
	require.NoError(t, err)
	require.NoError(t, st.Verify(peerPub))
	require.Equal(t, vc.OwnPower, st.Tally.Yes)
	st2, err := p.store.PeerLocalTally(p.ctx, fid, "origin", "peer", peerKey)
	require.NoError(t, err)
	require.Equal(t, st, st2, "asked again, the same signed tally")
	_, err = p.store.CastFederationVote(p.ctx, fid, carol, governance.No)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "after the window")
	pp, err := p.store.Proposal(p.ctx, fid)
	require.NoError(t, err)
	require.Equal(t, governance.StateClosed, pp.State)

	// The origin keeps only a tally that verifies with the pinned key.
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(o.store.StorePeerTally(o.ctx, fid, "peer", st)), "not announced: no key")
	require.NoError(t, o.store.PinPeerKey(o.ctx, fid, "peer", peerPub))
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	require.Equal(t, apperr.Conflict, apperr.CodeOf(o.store.PinPeerKey(o.ctx, fid, "peer", otherPub)), "the pinned key stays")
	forged := st
	forged.Tally.Yes++
	forged.Tally.Electorate++
	require.Equal(t, apperr.Invalid, apperr.CodeOf(o.store.StorePeerTally(o.ctx, fid, "peer", forged)), "a forged tally")
	require.NoError(t, o.store.PinPeerKey(o.ctx, fid, "silent", otherPub)) // announced, then silent
	require.Equal(t, apperr.Invalid, apperr.CodeOf(o.store.StorePeerTally(o.ctx, fid, "silent", st)), "another registry's tally")
	require.NoError(t, o.store.StorePeerTally(o.ctx, fid, "peer", st))

	due, err := o.store.GovernanceDue(o.ctx, 10)
	require.NoError(t, err)
	require.NotContains(t, due, fid.String(), "collecting until the deadline")
	o.clock.Advance(10 * time.Minute)
	due, err = o.store.GovernanceDue(o.ctx, 10)
	require.NoError(t, err)
	require.Contains(t, due, fid.String(), "past the collection deadline untallied: the sweep restarts its workflow")
	isOrigin, err := o.store.IsFederationOrigin(o.ctx, fid.String())
	require.NoError(t, err)
	require.True(t, isOrigin)
	isOrigin, err = p.store.IsFederationOrigin(p.ctx, fid.String())
	require.NoError(t, err)
	require.False(t, isOrigin, "the peer's copy is not its to tally")
	res, err := o.store.TallyFederation(o.ctx, fid, "origin", originKey)
	require.NoError(t, err)
	require.Equal(t, governance.StatePassed, res.State)
	require.Equal(t, va.OwnPower+vc.OwnPower, res.Tally.Yes, "alice on the origin and carol on the peer")
	require.Equal(t, vb.OwnPower, res.Tally.No)
	f, err := o.store.FederationOf(o.ctx, fid)
	require.NoError(t, err)
	require.Equal(t, []string{"origin", "peer"}, f.Counted)
	require.Equal(t, []string{"silent"}, f.Missing, "the silent peer is recorded, not ignored")
	require.Equal(t, fp.Electorate+jp.Electorate, *f.TotalElectorate)
	again, err = o.store.TallyFederation(o.ctx, fid, "origin", originKey)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, 1, o.count(`SELECT count(*) FROM outbox WHERE idempotency_key = $1`, "tally-"+fid.String()))
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(o.store.StorePeerTally(o.ctx, fid, "peer", st)), "after the tally")

	// Not swept by the local tally, vetoed, never enacted.
	o.clock.Advance(2 * time.Hour)
	localDue, err := o.store.ProposalsDue(o.ctx, 10)
	require.NoError(t, err)
	require.NotContains(t, localDue, fid, "the local sweep scan leaves federation proposals alone")
	_, err = o.store.VetoProposal(o.ctx, fid, "admin:op", "not for the whole federation")
	require.NoError(t, err)
	_, err = o.store.EnactProposal(o.ctx, fid)
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	due, err = o.store.GovernanceDue(o.ctx, 10)
	require.NoError(t, err)
	require.NotContains(t, due, fid.String(), "vetoed: nothing left to run")
	o.checkInvariants()
	p.checkInvariants()
}
