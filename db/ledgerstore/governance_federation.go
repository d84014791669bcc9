package ledgerstore

import (
	"bytes"
	"context"
	"crypto/ed25519"
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
)

// The federation tier. A federation proposal has the same ID on every
// registry taking part: on each it is a governance_proposals row with that
// registry's own snapshot and votes (local power), marked by a
// governance_federation row saying whether this registry originated it or
// joined it as a peer. The origin keeps the peers it expects, the key each
// answered the announcement with, and every signed local tally it counted.

// EventProposalElevated is written by the origin when it elevates a passed
// local proposal, and by each peer when it joins (elevate-<id>).
const EventProposalElevated = "ProposalElevated"

// Federation roles.
const (
	FederationOrigin = "origin"
	FederationJoined = "peer"
)

// How a peer is reached: another registry of this frame (the
// cross-registry channel), or another frame's mainframe (the bridge's).
const (
	ViaFrame  = "frame"
	ViaBridge = "bridge"
)

// FederationPeer is a registry the origin expects a tally from.
type FederationPeer struct {
	Registry    string
	Via         string
	PublicKey   ed25519.PublicKey // pinned at announcement; nil until then
	AnnouncedAt *time.Time
}

// Federation is a federation proposal's federation side on this registry.
type Federation struct {
	ProposalID     uuid.UUID
	Role           string
	OriginRegistry string
	OriginFrame    string
	LocalProposal  *uuid.UUID // the elevated local proposal (origin)
	CollectUntil   time.Time
	// Origin, once tallied.
	TotalElectorate *int64
	Counted         []string
	Missing         []string
	Peers           []FederationPeer             // origin
	Tallies         []governance.SignedTally     // origin: counted; peer: its own once taken
	TallyKeys       map[string]ed25519.PublicKey // the key each tally verifies with
}

func (s *Store) isFederation(ctx context.Context, q tegdb.DBTX, id uuid.UUID) (bool, error) {
	_, err := s.q.GovernanceFederationGet(ctx, q, id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	}
	return false, err
}

// FederationOf returns proposal id's federation side. Errors: NotFound
// (no such proposal, or a local one).
func (s *Store) FederationOf(ctx context.Context, id uuid.UUID) (Federation, error) {
	return s.federationOf(ctx, s.pool, id)
}

func (s *Store) federationOf(ctx context.Context, q tegdb.DBTX, id uuid.UUID) (Federation, error) {
	r, err := s.q.GovernanceFederationGet(ctx, q, id)
	if err != nil {
		return Federation{}, db.NotFound(err, "no federation proposal %s on this registry", id)
	}
	f := Federation{
		ProposalID: r.ProposalID, Role: r.Role, OriginRegistry: r.OriginRegistry, OriginFrame: r.OriginFrame,
		LocalProposal: r.LocalProposal, CollectUntil: r.CollectUntil, TotalElectorate: r.TotalElectorate,
		Counted: r.Counted, Missing: r.Missing, TallyKeys: map[string]ed25519.PublicKey{},
	}
	peers, err := s.q.GovernanceFederationPeers(ctx, q, id)
	if err != nil {
		return f, err
	}
	for _, p := range peers {
		f.Peers = append(f.Peers, FederationPeer{Registry: p.Registry, Via: p.Via, PublicKey: p.PublicKey, AnnouncedAt: p.AnnouncedAt})
	}
	tallies, err := s.q.GovernanceFederationTallies(ctx, q, id)
	if err != nil {
		return f, err
	}
	for _, t := range tallies {
		f.Tallies = append(f.Tallies, signedFromRow(t))
		f.TallyKeys[t.Registry] = t.PublicKey
	}
	return f, nil
}

func signedFromRow(t tegdb.GovernanceFederationTally) governance.SignedTally {
	return governance.SignedTally{Tally: governance.LocalTally{
		ProposalID: t.ProposalID.String(), Registry: t.Registry, Electorate: t.Electorate,
		Yes: t.YesPower, No: t.NoPower, Abstain: t.AbstainPower, TalliedAt: t.TalliedAt.UTC(),
	}, Signature: t.Signature}
}

// ElevateInput elevates a passed local proposal to the federation.
type ElevateInput struct {
	ID            uuid.UUID // the federation proposal's ID, derived from the local one
	LocalProposal uuid.UUID
	Actor         string // must be the local proposal's proposer
	Registry      string // this registry (the origin)
	Frame         string
	Window        time.Duration
	CollectWindow time.Duration // after the window, how long unavailable peers are retried
	VetoWindow    time.Duration
	Peers         []FederationPeer // Registry and Via; at least one
}

// Elevate opens federation proposal in.ID from the passed local proposal
// in.LocalProposal: the same title, body, quorum, threshold and change,
// this registry's snapshot, the peers expected, and ProposalElevated
// (elevate-<id>), in one transaction. A local proposal is elevated once:
// elevating it again returns the federation proposal (Replayed). Errors:
// NotFound (no such local proposal); Forbidden (not its proposer);
// FailedPrecondition (not passed); Invalid (a federation proposal, or no
// peers).
func (s *Store) Elevate(ctx context.Context, in ElevateInput) (Proposal, error) {
	return onceMore(func() (Proposal, error) { return s.elevate(ctx, in) })
}

// onceMore runs f again when it lost a race to insert the same rows (a
// concurrent elevation or announcement): the second run finds them and
// answers as a replay.
func onceMore(f func() (Proposal, error)) (Proposal, error) {
	p, err := f()
	if db.SQLState(err) == db.SQLStateUnique {
		return f()
	}
	return p, err
}

func (s *Store) elevate(ctx context.Context, in ElevateInput) (Proposal, error) {
	if in.ID == uuid.Nil || in.Registry == "" || in.Window < time.Second || in.CollectWindow <= 0 || in.VetoWindow < 0 {
		return Proposal{}, apperr.New(apperr.Invalid, "elevation needs an id, a registry, a window of at least 1s and a collection window")
	}
	if len(in.Peers) == 0 {
		return Proposal{}, apperr.New(apperr.FailedPrecondition, "this registry has no federated peer to elevate to")
	}
	for _, p := range in.Peers {
		if p.Registry == "" || p.Registry == in.Registry || (p.Via != ViaFrame && p.Via != ViaBridge) {
			return Proposal{}, apperr.New(apperr.Invalid, "peer %q is not a federated registry", p.Registry)
		}
	}
	now := s.clock()
	var out Proposal
	err := s.db.TxOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		local, err := s.q.GovernanceProposalLock(ctx, tx, in.LocalProposal)
		if err != nil {
			return db.NotFound(err, "proposal %s not found", in.LocalProposal)
		}
		if isFed, err := s.isFederation(ctx, tx, in.LocalProposal); err != nil {
			return err
		} else if isFed {
			return apperr.New(apperr.Invalid, "proposal %s is already a federation proposal", in.LocalProposal)
		}
		if prev, err := s.q.GovernanceFederationByLocal(ctx, tx, &in.LocalProposal); err == nil {
			row, err := s.q.GovernanceProposalGet(ctx, tx, prev.ProposalID)
			if err != nil {
				return err
			}
			out, err = proposalFromRow(row)
			out.Replayed = true
			return err
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if local.Proposer != in.Actor {
			return apperr.New(apperr.Forbidden, "only the proposer of %s may elevate it", in.LocalProposal)
		}
		if local.State != governance.StatePassed && local.State != governance.StateEnacted {
			return apperr.New(apperr.FailedPrecondition, "proposal %s is %s; only a passed proposal is elevated", in.LocalProposal, local.State)
		}
		lp, err := proposalFromRow(local)
		if err != nil {
			return err
		}
		closes := now.Add(in.Window)
		if out, err = s.openProposalTx(ctx, tx, ProposalInput{
			ID: in.ID, Proposer: local.Proposer, VetoWindow: in.VetoWindow,
			Draft: governance.Draft{Title: lp.Title, Body: lp.Body, Window: in.Window, QuorumBps: lp.QuorumBps, ThresholdBps: lp.ThresholdBps, Change: lp.Change},
		}, now, closes); err != nil {
			return err
		}
		if err := s.q.GovernanceFederationInsert(ctx, tx, tegdb.GovernanceFederationInsertParams{
			ProposalID: in.ID, Role: FederationOrigin, OriginRegistry: in.Registry, OriginFrame: in.Frame,
			LocalProposal: &in.LocalProposal, CollectUntil: closes.Add(in.CollectWindow),
		}); err != nil {
			return err
		}
		names := make([]string, 0, len(in.Peers))
		for _, p := range in.Peers {
			if slices.Contains(names, p.Registry) {
				continue
			}
			names = append(names, p.Registry)
			if err := s.q.GovernanceFederationPeerInsert(ctx, tx, tegdb.GovernanceFederationPeerInsertParams{ProposalID: in.ID, Registry: p.Registry, Via: p.Via}); err != nil {
				return err
			}
		}
		slices.Sort(names)
		return s.writeElevated(ctx, tx, out, FederationOrigin, in.Registry, in.Frame, &in.LocalProposal, names, now)
	})
	return out, err
}

type elevatedPayload struct {
	ProposalID     uuid.UUID          `json:"proposal_id"`
	Role           string             `json:"role"`
	OriginRegistry string             `json:"origin_registry"`
	OriginFrame    string             `json:"origin_frame"`
	LocalProposal  *uuid.UUID         `json:"local_proposal,omitempty"`
	Proposer       string             `json:"proposer"`
	Title          string             `json:"title"`
	Change         *governance.Change `json:"change,omitempty"`
	ClosesAt       time.Time          `json:"closes_at"`
	Electorate     int64              `json:"electorate"`
	Voters         int                `json:"voters"`
	Peers          []string           `json:"peers,omitempty"`
}

func (s *Store) writeElevated(ctx context.Context, tx pgx.Tx, p Proposal, role, origin, frame string, local *uuid.UUID, peers []string, now time.Time) error {
	env, err := newEvent(EventProposalElevated, "elevate-"+p.ID.String(), p.Proposer, now, nil, elevatedPayload{
		ProposalID: p.ID, Role: role, OriginRegistry: origin, OriginFrame: frame, LocalProposal: local, Proposer: p.Proposer,
		Title: p.Title, Change: p.Change, ClosesAt: p.ClosesAt, Electorate: p.Electorate, Voters: p.Voters, Peers: peers,
	})
	if err != nil {
		return err
	}
	return s.outbox.Write(ctx, tx, env)
}

// JoinInput is a federation proposal announced by its origin.
type JoinInput struct {
	ID             uuid.UUID
	OriginRegistry string
	OriginFrame    string
	Proposer       string
	Draft          governance.Draft // Window is the origin's, for the record
	ClosesAt       time.Time
}

// JoinFederation records federation proposal in.ID announced by its
// origin: this registry's own snapshot of its voters (local power), open
// until the origin's closing time, with ProposalElevated (elevate-<id>)
// in one transaction. A repeated announcement from the same origin
// returns the proposal (Replayed). Errors: Invalid (the draft);
// FailedPrecondition (the window has already ended here); Conflict (the
// ID exists with another origin, or as a local proposal).
func (s *Store) JoinFederation(ctx context.Context, in JoinInput) (Proposal, error) {
	return onceMore(func() (Proposal, error) { return s.joinFederation(ctx, in) })
}

func (s *Store) joinFederation(ctx context.Context, in JoinInput) (Proposal, error) {
	if err := in.Draft.Validate(governance.Limits{MinWindow: time.Second, MaxWindow: 365 * 24 * time.Hour, MinQuorumBps: 1, MinThreshold: 5000}); err != nil {
		return Proposal{}, apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if in.ID == uuid.Nil || in.OriginRegistry == "" || in.Proposer == "" {
		return Proposal{}, apperr.New(apperr.Invalid, "an announced proposal needs an id, an origin and a proposer")
	}
	now := s.clock()
	if !now.Before(in.ClosesAt) || in.ClosesAt.Sub(now) > 365*24*time.Hour {
		return Proposal{}, apperr.New(apperr.FailedPrecondition, "federation proposal %s closes at %s: nothing left to vote on here", in.ID, in.ClosesAt.Format(time.RFC3339Nano))
	}
	var out Proposal
	err := s.db.TxOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if prev, err := s.q.GovernanceProposalGet(ctx, tx, in.ID); err == nil {
			f, ferr := s.q.GovernanceFederationGet(ctx, tx, in.ID)
			if ferr != nil || f.Role != FederationJoined || f.OriginRegistry != in.OriginRegistry {
				return apperr.New(apperr.Conflict, "proposal %s exists here with another origin", in.ID)
			}
			out, err = proposalFromRow(prev)
			out.Replayed = true
			return err
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var err error
		if out, err = s.openProposalTx(ctx, tx, ProposalInput{ID: in.ID, Proposer: in.Proposer, Draft: in.Draft}, now, in.ClosesAt); err != nil {
			return err
		}
		if err := s.q.GovernanceFederationInsert(ctx, tx, tegdb.GovernanceFederationInsertParams{
			ProposalID: in.ID, Role: FederationJoined, OriginRegistry: in.OriginRegistry, OriginFrame: in.OriginFrame, CollectUntil: in.ClosesAt,
		}); err != nil {
			return err
		}
		return s.writeElevated(ctx, tx, out, FederationJoined, in.OriginRegistry, in.OriginFrame, nil, nil, now)
	})
	return out, err
}

// CastFederationVote is CastVote on this registry's copy of a federation
// proposal. Errors as CastVote; NotFound also for a local proposal.
func (s *Store) CastFederationVote(ctx context.Context, id uuid.UUID, voter string, choice governance.Choice) (Vote, error) {
	return s.castVote(ctx, id, voter, choice, true)
}

// PinPeerKey records the key peer answered federation proposal id's
// announcement with; its tally must verify with it. The same key again is
// accepted. Errors: NotFound (not a peer of the proposal); Conflict (a
// different key was pinned).
func (s *Store) PinPeerKey(ctx context.Context, id uuid.UUID, peer string, key ed25519.PublicKey) error {
	if len(key) != ed25519.PublicKeySize {
		return apperr.New(apperr.Invalid, "peer %s answered a key of %d bytes", peer, len(key))
	}
	return s.db.Tx(ctx, func(tx pgx.Tx) error {
		f, err := s.federationOf(ctx, tx, id)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(f.Peers, func(p FederationPeer) bool { return p.Registry == peer })
		if f.Role != FederationOrigin || i < 0 {
			return apperr.New(apperr.NotFound, "%s is not a peer of federation proposal %s", peer, id)
		}
		if cur := f.Peers[i].PublicKey; cur != nil {
			if !bytes.Equal(cur, key) {
				return apperr.New(apperr.Conflict, "peer %s answered another key than the one pinned for proposal %s", peer, id)
			}
			return nil
		}
		_, err = s.q.GovernanceFederationPeerAnnounced(ctx, tx, tegdb.GovernanceFederationPeerAnnouncedParams{PublicKey: key, Now: s.clock(), ProposalID: id, Registry: peer})
		return err
	})
}

// StorePeerTally keeps a peer's signed local tally of an open federation
// proposal this registry originated, after checking it is for this
// proposal, from that peer, and verifies with the key pinned at its
// announcement. The first tally kept for a peer stands. Errors: NotFound
// (not a peer of the proposal); FailedPrecondition (never announced, or
// the proposal is already tallied); Invalid (the tally does not verify).
func (s *Store) StorePeerTally(ctx context.Context, id uuid.UUID, peer string, st governance.SignedTally) error {
	return s.db.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.GovernanceProposalLock(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "proposal %s not found", id)
		}
		f, err := s.federationOf(ctx, tx, id)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(f.Peers, func(p FederationPeer) bool { return p.Registry == peer })
		switch {
		case f.Role != FederationOrigin || i < 0:
			return apperr.New(apperr.NotFound, "%s is not a peer of federation proposal %s", peer, id)
		case f.Peers[i].PublicKey == nil:
			return apperr.New(apperr.FailedPrecondition, "peer %s was never announced proposal %s: no key to verify its tally", peer, id)
		case row.State != governance.StateOpen:
			return apperr.New(apperr.FailedPrecondition, "federation proposal %s is already tallied", id)
		case st.Tally.ProposalID != id.String() || st.Tally.Registry != peer:
			return apperr.New(apperr.Invalid, "the tally answered by %s is for %s of %s", peer, st.Tally.ProposalID, st.Tally.Registry)
		}
		if err := st.Verify(f.Peers[i].PublicKey); err != nil {
			return apperr.New(apperr.Invalid, "%s", err.Error())
		}
		_, err = s.q.GovernanceFederationTallyInsert(ctx, tx, tallyRow(id, st, f.Peers[i].PublicKey))
		return err
	})
}

func tallyRow(id uuid.UUID, st governance.SignedTally, pub ed25519.PublicKey) tegdb.GovernanceFederationTallyInsertParams {
	t := st.Tally
	return tegdb.GovernanceFederationTallyInsertParams{
		ProposalID: id, Registry: t.Registry, Electorate: t.Electorate, YesPower: t.Yes, NoPower: t.No, AbstainPower: t.Abstain,
		TalliedAt: t.TalliedAt, Signature: st.Signature, PublicKey: pub,
	}
}

// localTallyTx counts this registry's copy of federation proposal row over
// its snapshot (the caller holds governance_votes SHARE and the row) and
// signs it as self with key. The time is cut to microseconds, as stored,
// so the stored tally verifies.
func (s *Store) localTallyTx(ctx context.Context, tx pgx.Tx, row tegdb.GovernanceProposal, self string, key ed25519.PrivateKey, now time.Time) (governance.SignedTally, governance.Result, error) {
	snapRows, err := s.q.GovernanceSnapshotAll(ctx, tx, row.ID)
	if err != nil {
		return governance.SignedTally{}, governance.Result{}, err
	}
	snap := make([]governance.SnapshotEntry, len(snapRows))
	for i, r := range snapRows {
		snap[i] = governance.SnapshotEntry{Voter: r.Voter, Power: r.Power}
		if r.Delegate != nil {
			snap[i].Delegate = *r.Delegate
		}
	}
	voteRows, err := s.q.GovernanceVotesAll(ctx, tx, row.ID)
	if err != nil {
		return governance.SignedTally{}, governance.Result{}, err
	}
	direct := make(map[string]governance.Choice, len(voteRows))
	for _, v := range voteRows {
		direct[v.Voter] = governance.Choice(v.Choice)
	}
	res, err := governance.Tally(snap, direct, governance.Rules{QuorumBps: row.QuorumBps, ThresholdBps: row.ThresholdBps})
	if err != nil {
		return governance.SignedTally{}, res, err
	}
	st, err := governance.SignTally(key, governance.LocalTally{
		ProposalID: row.ID.String(), Registry: self, Electorate: res.Electorate, Yes: res.Yes, No: res.No, Abstain: res.Abstain,
		TalliedAt: now.UTC().Truncate(time.Microsecond),
	})
	return st, res, err
}

// PeerLocalTally takes, once, this registry's signed local tally of the
// federation proposal id it joined, for its origin (caller): it closes the
// copy to votes (state closed) and writes ProposalTallied (tally-<id>) in
// one transaction. Asked again, it answers the same signed tally. Errors:
// NotFound (no such federation proposal here); Forbidden (caller is not
// its origin); FailedPrecondition (its window has not ended on this
// registry's clock: ask again).
func (s *Store) PeerLocalTally(ctx context.Context, id uuid.UUID, caller, self string, key ed25519.PrivateKey) (governance.SignedTally, error) {
	now := s.clock()
	var out governance.SignedTally
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		if err := s.q.GovernanceVotesLockForTally(ctx, tx); err != nil {
			return err
		}
		row, err := s.q.GovernanceProposalLock(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "no federation proposal %s on this registry", id)
		}
		f, err := s.q.GovernanceFederationGet(ctx, tx, id)
		if err != nil || f.Role != FederationJoined {
			return db.NotFound(pgx.ErrNoRows, "no federation proposal %s joined by this registry", id)
		}
		if f.OriginRegistry != caller {
			return apperr.New(apperr.Forbidden, "federation proposal %s is tallied for its origin %s only", id, f.OriginRegistry)
		}
		if prev, err := s.q.GovernanceFederationTallyGet(ctx, tx, tegdb.GovernanceFederationTallyGetParams{ProposalID: id, Registry: self}); err == nil {
			out = signedFromRow(prev)
			return nil
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if now.Before(row.ClosesAt) {
			return apperr.New(apperr.FailedPrecondition, "federation proposal %s is open here until %s", id, row.ClosesAt.Format(time.RFC3339Nano))
		}
		st, res, err := s.localTallyTx(ctx, tx, row, self, key, now)
		if err != nil {
			return err
		}
		if _, err := s.q.GovernanceFederationTallyInsert(ctx, tx, tallyRow(id, st, key.Public().(ed25519.PublicKey))); err != nil {
			return err
		}
		if err := s.q.GovernanceProposalSetClosed(ctx, tx, tegdb.GovernanceProposalSetClosedParams{
			ID: id, Now: now, YesPower: res.Yes, NoPower: res.No, AbstainPower: res.Abstain,
		}); err != nil {
			return err
		}
		out = st
		env, err := newEvent(EventProposalTallied, "tally-"+id.String(), row.Proposer, now, nil, federationTallyPayload{
			tallyPayload: tallyPayload{ProposalID: id, Electorate: res.Electorate, Turnout: res.Turnout, Yes: res.Yes, No: res.No, Abstain: res.Abstain,
				Direct: res.Direct, Delegated: res.Delegated, QuorumBps: row.QuorumBps, ThresholdBps: row.ThresholdBps},
			Role: FederationJoined, Origin: f.OriginRegistry,
		})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

type federationTallyPayload struct {
	tallyPayload
	Role            string   `json:"federation_role"`
	Origin          string   `json:"origin_registry"`
	TotalElectorate int64    `json:"total_electorate,omitempty"`
	Counted         []string `json:"counted,omitempty"`
	Missing         []string `json:"missing,omitempty"`
}

// TallyFederation tallies federation proposal id at its origin, once:
// this registry's own local tally (signed as self with key) and every
// peer tally kept by StorePeerTally are aggregated (governance.Aggregate:
// each verified with its key); the expected peers without a tally are
// recorded as missing. The result, who was counted and who was missing
// and ProposalTallied (tally-<id>) are written in one transaction; a
// passed proposal with a change waits its veto window. Tallying again
// returns the proposal as it is (Replayed). Errors: NotFound;
// FailedPrecondition (the window has not ended).
func (s *Store) TallyFederation(ctx context.Context, id uuid.UUID, self string, key ed25519.PrivateKey) (Proposal, error) {
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
		f, err := s.federationOf(ctx, tx, id)
		if err != nil {
			return err
		}
		if f.Role != FederationOrigin {
			return apperr.New(apperr.Invalid, "federation proposal %s is tallied by its origin %s", id, f.OriginRegistry)
		}
		if row.State != governance.StateOpen {
			out, err = proposalFromRow(row)
			out.Replayed = true
			return err
		}
		if now.Before(row.ClosesAt) {
			return apperr.New(apperr.FailedPrecondition, "proposal %s is open until %s", id, row.ClosesAt.Format(time.RFC3339Nano))
		}
		own, _, err := s.localTallyTx(ctx, tx, row, self, key, now)
		if err != nil {
			return err
		}
		pub := key.Public().(ed25519.PublicKey)
		if _, err := s.q.GovernanceFederationTallyInsert(ctx, tx, tallyRow(id, own, pub)); err != nil {
			return err
		}
		expected := []string{self}
		keys := map[string]ed25519.PublicKey{self: pub}
		for _, p := range f.Peers {
			expected = append(expected, p.Registry)
			keys[p.Registry] = p.PublicKey
		}
		tallies := []governance.SignedTally{own}
		for _, t := range f.Tallies {
			if t.Tally.Registry != self {
				tallies = append(tallies, t)
			}
		}
		agg, err := governance.Aggregate(id.String(), expected, keys, tallies, governance.Rules{QuorumBps: row.QuorumBps, ThresholdBps: row.ThresholdBps})
		if err != nil {
			return fmt.Errorf("ledgerstore: aggregate federation proposal %s: %w", id, err)
		}
		state, enactAfter := tallyOutcome(agg.Passed, row.Change != nil, time.Duration(row.VetoSeconds)*time.Second, now)
		if err := s.q.GovernanceProposalSetTally(ctx, tx, tegdb.GovernanceProposalSetTallyParams{
			ID: id, State: state, Now: now, YesPower: agg.Yes, NoPower: agg.No, AbstainPower: agg.Abstain,
			QuorumMet: agg.QuorumMet, EnactAfter: enactAfter,
		}); err != nil {
			return err
		}
		counted, missing := nonNil(agg.Counted), nonNil(agg.Missing)
		if err := s.q.GovernanceFederationSetResult(ctx, tx, tegdb.GovernanceFederationSetResultParams{
			ProposalID: id, TotalElectorate: agg.Electorate, Counted: counted, Missing: missing,
		}); err != nil {
			return err
		}
		row.State, row.TalliedAt, row.YesPower, row.NoPower, row.AbstainPower = state, &now, &agg.Yes, &agg.No, &agg.Abstain
		row.QuorumMet.Bool, row.QuorumMet.Valid, row.EnactAfter = agg.QuorumMet, true, enactAfter
		if out, err = proposalFromRow(row); err != nil {
			return err
		}
		env, err := newEvent(EventProposalTallied, "tally-"+id.String(), row.Proposer, now, nil, federationTallyPayload{
			tallyPayload: tallyPayload{ProposalID: id, Electorate: agg.Electorate, Turnout: agg.Turnout, Yes: agg.Yes, No: agg.No, Abstain: agg.Abstain,
				QuorumMet: agg.QuorumMet, Passed: agg.Passed, EnactAfter: enactAfter, QuorumBps: row.QuorumBps, ThresholdBps: row.ThresholdBps},
			Role: FederationOrigin, Origin: self, TotalElectorate: agg.Electorate, Counted: counted, Missing: missing,
		})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

// FederationDue lists up to limit federation proposals this registry
// originated whose tally workflow should be running: open past their
// collection deadline, or passed with a change past their veto window.
func (s *Store) FederationDue(ctx context.Context, limit int) ([]uuid.UUID, error) {
	return s.q.GovernanceFederationDue(ctx, s.pool, tegdb.GovernanceFederationDueParams{Now: s.clock(), MaxRows: int32(min(max(limit, 1), 1000))})
}

// IsFederationOrigin reports whether proposal id is a federation proposal
// this registry originated (its tally is the federation workflow's).
func (s *Store) IsFederationOrigin(ctx context.Context, id string) (bool, error) {
	u, err := parseProposalID(id)
	if err != nil {
		return false, err
	}
	f, err := s.q.GovernanceFederationGet(ctx, s.pool, u)
	switch {
	case err == nil:
		return f.Role == FederationOrigin, nil
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	}
	return false, err
}
