package xfer

import (
	"context"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// LedgerPort adapts the source TEG to activities.SettlementLedger. An
// adapter because the two sides must not share types: the activities'
// decisions and outcomes are workflow payloads, recorded in histories, so
// they stay plain and free of the store; the store's batch methods speak
// its own rows. The adapter only translates.
type LedgerPort struct {
	Store *ledgerstore.Store
	// Currency is the frame's currency, the one every amount of this TEG
	// is in (stated to targets with each transfer's terms).
	Currency string
}

var (
	_ activities.SettlementLedger = LedgerPort{}
	_ activities.SettlementPeers  = PeersPort{}
	_ activities.PrepareSweeper   = (*Sweeper)(nil)
)

// Records implements activities.SettlementLedger.
func (p LedgerPort) Records(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]activities.XferRecord, error) {
	xs, err := p.Store.XferStatuses(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]activities.XferRecord, len(xs))
	for id, x := range xs {
		out[id] = activities.XferRecord{
			ID: x.ID, Target: x.Target, Memo: x.Memo, Status: x.Status,
			Terms: xferstate.Terms{From: x.From, To: x.To, AmountUnits: x.AmountUnits, Currency: p.Currency},
		}
	}
	return out, nil
}

// Decide implements activities.SettlementLedger.
func (p LedgerPort) Decide(ctx context.Context, ds []activities.XferDecision) ([]activities.XferOutcome, error) {
	in := make([]ledgerstore.XferDecision, len(ds))
	for i, d := range ds {
		in[i] = ledgerstore.XferDecision{ID: d.ID, Commit: d.Commit, Reason: d.Reason, KeepHoldOnAbort: d.KeepHoldOnAbort,
			Mismatch: d.Mismatch, Reported: d.Prepared}
	}
	xs, err := p.Store.DecideXfers(ctx, in)
	if err != nil {
		return nil, err
	}
	out := make([]activities.XferOutcome, 0, len(ds))
	seen := map[uuid.UUID]bool{}
	for _, d := range ds {
		if seen[d.ID] {
			continue
		}
		seen[d.ID] = true
		x := xs[d.ID]
		out = append(out, activities.XferOutcome{ID: d.ID, Status: x.Status, Reason: x.Reason})
	}
	return out, nil
}

// Finish implements activities.SettlementLedger.
func (p LedgerPort) Finish(ctx context.Context, fees map[uuid.UUID]int64) error {
	return p.Store.FinishXfers(ctx, fees)
}

// VoidAborted implements activities.SettlementLedger.
func (p LedgerPort) VoidAborted(ctx context.Context, ids []uuid.UUID) error {
	_, err := p.Store.VoidAbortedXfers(ctx, ids)
	return err
}

// PeersPort adapts Client to activities.SettlementPeers, translating the
// wire protocol's results into the activities' payload types (for the
// reason given at LedgerPort).
type PeersPort struct{ Client *Client }

func votes(rs []Result) []activities.XferVote {
	out := make([]activities.XferVote, len(rs))
	for i, r := range rs {
		out[i] = activities.XferVote{ID: r.ID, Status: r.Status, Reason: r.Reason, FeeUnits: r.FeeUnits}
		if r.AmountUnits != 0 || r.From != "" || r.To != "" {
			out[i].Terms = &xferstate.Terms{From: r.From, To: r.To, AmountUnits: r.AmountUnits, Currency: r.Currency}
		}
	}
	return out
}

func items(xs []activities.XferRecord) []Item {
	out := make([]Item, len(xs))
	for i, x := range xs {
		out[i] = Item{ID: x.ID, From: x.Terms.From, To: x.Terms.To, AmountUnits: x.Terms.AmountUnits, Currency: x.Terms.Currency, Memo: x.Memo}
	}
	return out
}

// Prepare implements activities.SettlementPeers.
func (p PeersPort) Prepare(ctx context.Context, target string, xs []activities.XferRecord) ([]activities.XferVote, error) {
	rs, err := p.Client.Prepare(ctx, target, items(xs))
	return votes(rs), err
}

// Commit implements activities.SettlementPeers.
func (p PeersPort) Commit(ctx context.Context, target string, xs []activities.XferRecord) ([]activities.XferVote, error) {
	rs, err := p.Client.Commit(ctx, target, items(xs))
	return votes(rs), err
}

// Abort implements activities.SettlementPeers.
func (p PeersPort) Abort(ctx context.Context, target string, ids []uuid.UUID) ([]activities.XferVote, error) {
	rs, err := p.Client.Abort(ctx, target, ids)
	return votes(rs), err
}

// Sweeper settles stale prepares on the participant side: it asks each
// prepare's coordinator for its decision and commits (committing or
// committed), aborts (aborted, or unknown: presumed abort; a coordinator
// also reports its aborting transfers as aborted) or leaves it (pending:
// the coordinator's saga is still running).
type Sweeper struct {
	Store  *ledgerstore.Store
	Client *Client
	MinAge time.Duration // prepares younger than this are left alone (default 5 min)
	Now    func() time.Time
	// Currency is this TEG's (the frame's): when set, a coordinator's
	// commit stated in another currency is not applied.
	Currency string
}

// SweepStalePrepares implements activities.PrepareSweeper. It handles at
// most one page (ledgerstore.MaxXferBatch) per call; the schedule calls it
// again.
func (s *Sweeper) SweepStalePrepares(ctx context.Context) (int, error) {
	now, minAge := time.Now, s.MinAge
	if s.Now != nil {
		now = s.Now
	}
	if minAge <= 0 {
		minAge = 5 * time.Minute
	}
	stale, err := s.Store.StalePrepares(ctx, now().Add(-minAge), ledgerstore.MaxXferBatch)
	if err != nil {
		return 0, err
	}
	bySource := map[string][]uuid.UUID{}
	for _, p := range stale {
		bySource[p.Source] = append(bySource[p.Source], p.ID)
	}
	sources := make([]string, 0, len(bySource))
	for src := range bySource {
		sources = append(sources, src)
	}
	sort.Strings(sources)
	settled := 0
	var firstErr error
	for _, src := range sources {
		ds, err := s.Client.Decisions(ctx, src, bySource[src])
		if err != nil {
			firstErr = err
			continue
		}
		var commit []ledgerstore.XferPrepareItem
		var abort []uuid.UUID
		for _, d := range ds {
			switch xferstate.Resolve(d.Status) {
			case xferstate.CommitPrepare:
				// Credited only with the coordinator's own statement of
				// the terms, compared with the prepare by CommitXfers; a
				// coordinator that states none (or another currency) is
				// asked again by the next sweep.
				if d.AmountUnits <= 0 || (s.Currency != "" && d.Currency != s.Currency) {
					continue
				}
				commit = append(commit, ledgerstore.XferPrepareItem{ID: d.ID, From: d.From, To: d.To, AmountUnits: d.AmountUnits})
			case xferstate.AbortPrepare:
				abort = append(abort, d.ID)
			case xferstate.Wait:
			}
		}
		if len(commit) > 0 {
			if _, err := s.Store.CommitXfers(ctx, src, commit); err != nil {
				firstErr = err
				continue
			}
			settled += len(commit)
		}
		if len(abort) > 0 {
			if _, err := s.Store.AbortXfers(ctx, src, abort); err != nil {
				firstErr = err
				continue
			}
			settled += len(abort)
		}
	}
	return settled, firstErr
}
