package activities_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// settlementPeers answers every participant call with err, recording
// which call it got.
type settlementPeers struct {
	err   error
	calls []string
	sent  []activities.XferRecord
}

func (p *settlementPeers) Prepare(_ context.Context, target string, xs []activities.XferRecord) ([]activities.XferVote, error) {
	p.calls = append(p.calls, "prepare "+target)
	p.sent = append(p.sent, xs...)
	return nil, p.err
}

func (p *settlementPeers) Commit(_ context.Context, target string, xs []activities.XferRecord) ([]activities.XferVote, error) {
	p.calls = append(p.calls, "commit "+target)
	p.sent = append(p.sent, xs...)
	return nil, p.err
}

func (p *settlementPeers) Abort(_ context.Context, target string, _ []uuid.UUID) ([]activities.XferVote, error) {
	p.calls = append(p.calls, "abort "+target)
	return nil, p.err
}

// settlementLedger holds the source's records and answers every
// source-side step with err.
type settlementLedger struct {
	recs      map[uuid.UUID]activities.XferRecord
	err       error
	recordErr error
	calls     []string
	decided   []activities.XferDecision
}

// ledgerWith records one transfer to beta-main in status st.
func ledgerWith(id uuid.UUID, st xferstate.Status) *settlementLedger {
	return &settlementLedger{recs: map[uuid.UUID]activities.XferRecord{id: {ID: id, Target: "beta-main", Status: st,
		Terms: xferstate.Terms{From: "did:theprotocol:a", To: "did:theprotocol:b", AmountUnits: 10_000, Currency: "AVT"}}}}
}

func (l *settlementLedger) Records(_ context.Context, ids []uuid.UUID) (map[uuid.UUID]activities.XferRecord, error) {
	out := map[uuid.UUID]activities.XferRecord{}
	for _, id := range ids {
		if r, ok := l.recs[id]; ok {
			out[id] = r
		}
	}
	return out, l.recordErr
}

func (l *settlementLedger) Decide(_ context.Context, ds []activities.XferDecision) ([]activities.XferOutcome, error) {
	l.calls = append(l.calls, "decide")
	l.decided = append(l.decided, ds...)
	return nil, l.err
}

func (l *settlementLedger) Finish(context.Context, map[uuid.UUID]int64) error {
	l.calls = append(l.calls, "finish")
	return l.err
}

func (l *settlementLedger) VoidAborted(context.Context, []uuid.UUID) error {
	l.calls = append(l.calls, "void")
	return l.err
}

// A peer that is down or failing inside (including a transport error,
// which carries no code) is retried; a peer that answered with any other
// refusal refused for good.
func TestSettlementPeerCallsClassifyErrors(t *testing.T) {
	cases := append([]errorCase{{name: "ok"}, {name: "network", portErr: errNetwork, nonRetryable: retryable}},
		codes(retryable, apperr.Unavailable, apperr.Internal)...)
	cases = append(cases, codes(activities.ErrTypePeerRefused, apperr.Invalid, apperr.NotFound, apperr.Forbidden,
		apperr.Unauthenticated, apperr.Conflict, apperr.FailedPrecondition, apperr.RateLimited)...)
	id := uuid.New()
	ids := activities.IDsInput{Target: "beta-main", IDs: []uuid.UUID{id}}
	for _, step := range []struct {
		name   string
		status xferstate.Status // the transfer's status on the source
		run    func(*testing.T, *activities.Settlement) error
	}{
		{"prepare", xferstate.Pending, func(t *testing.T, a *activities.Settlement) error {
			return execute(t, a, a.SettlementPrepare, activities.PrepareInput{Target: "beta-main", Items: []activities.XferItem{{ID: id}}})
		}},
		{"commit", xferstate.Committing, func(t *testing.T, a *activities.Settlement) error { return execute(t, a, a.SettlementCommit, ids) }},
		{"abort", xferstate.Aborting, func(t *testing.T, a *activities.Settlement) error { return execute(t, a, a.SettlementAbort, ids) }},
	} {
		for _, c := range cases {
			t.Run(step.name+"/"+c.name, func(t *testing.T) {
				peers := &settlementPeers{err: c.portErr}
				requireClass(t, c, step.run(t, &activities.Settlement{Ledger: ledgerWith(id, step.status), Peers: peers}))
				require.Equal(t, []string{step.name + " beta-main"}, peers.calls)
			})
		}
	}
}

// Every peer step reads the source's record first: a transfer it does not
// know, one addressed to another target, a commit it did not decide or an
// abort it did not decide is refused for good and nothing is sent; a
// failure to read the record is retried.
func TestSettlementPeerCallsAreRefusedByTheSourceRecord(t *testing.T) {
	id := uuid.New()
	prepare := func(target string) func(*testing.T, *activities.Settlement) error {
		return func(t *testing.T, a *activities.Settlement) error {
			return execute(t, a, a.SettlementPrepare, activities.PrepareInput{Target: target, Items: []activities.XferItem{{ID: id}}})
		}
	}
	commit := func(t *testing.T, a *activities.Settlement) error {
		return execute(t, a, a.SettlementCommit, activities.IDsInput{Target: "beta-main", IDs: []uuid.UUID{id}})
	}
	abort := func(t *testing.T, a *activities.Settlement) error {
		return execute(t, a, a.SettlementAbort, activities.IDsInput{Target: "beta-main", IDs: []uuid.UUID{id}})
	}
	for _, tc := range []struct {
		name   string
		ledger *settlementLedger
		run    func(*testing.T, *activities.Settlement) error
		want   errorCase
	}{
		{"prepare of an unknown transfer", &settlementLedger{}, prepare("beta-main"),
			errorCase{name: "unknown", portErr: errors.New("not a transfer of this registry"), nonRetryable: activities.ErrTypeXferNotFound}},
		{"prepare on another target", ledgerWith(id, xferstate.Pending), prepare("gamma-main"),
			errorCase{name: "target", portErr: errors.New(`addressed to "beta-main"`), nonRetryable: activities.ErrTypeXferRefused}},
		{"commit of a pending transfer", ledgerWith(id, xferstate.Pending), commit,
			errorCase{name: "commit", portErr: errors.New("not decided commit"), nonRetryable: activities.ErrTypeXferRefused}},
		{"commit of an aborted transfer", ledgerWith(id, xferstate.Aborted), commit,
			errorCase{name: "commit", portErr: errors.New("not decided commit"), nonRetryable: activities.ErrTypeXferRefused}},
		{"abort of a committing transfer", ledgerWith(id, xferstate.Committing), abort,
			errorCase{name: "abort", portErr: errors.New("not decided abort"), nonRetryable: activities.ErrTypeXferRefused}},
		{"records unavailable", &settlementLedger{recordErr: errNetwork}, prepare("beta-main"),
			errorCase{name: "records", portErr: errNetwork, nonRetryable: retryable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peers := &settlementPeers{}
			err := tc.run(t, &activities.Settlement{Ledger: tc.ledger, Peers: peers})
			requireClass(t, tc.want, err)
			require.Empty(t, peers.calls, "nothing sent to the target")
		})
	}
}

// The prepare sends the recorded terms whatever the items say, and only
// for pending transfers.
func TestSettlementPrepareSendsTheRecordedTermsOfPendingTransfers(t *testing.T) {
	id, done := uuid.New(), uuid.New()
	l := ledgerWith(id, xferstate.Pending)
	l.recs[done] = activities.XferRecord{ID: done, Target: "beta-main", Status: xferstate.Committing}
	peers := &settlementPeers{}
	a := &activities.Settlement{Ledger: l, Peers: peers}
	require.NoError(t, execute(t, a, a.SettlementPrepare, activities.PrepareInput{Target: "beta-main", Items: []activities.XferItem{
		{ID: id, From: "did:theprotocol:a", To: "did:theprotocol:mallory", AmountUnits: 1 << 40}, {ID: id}, {ID: done},
	}}))
	require.Equal(t, []activities.XferRecord{l.recs[id]}, peers.sent, "once, with the record's terms")
}

// The decision compares what the target reported with the record: other
// terms abort with the mismatch handed to the ledger; equal terms commit;
// a decision for another target is refused and nothing is decided.
func TestSettlementDecideChecksTheReportedTerms(t *testing.T) {
	id := uuid.New()
	rec := ledgerWith(id, xferstate.Pending).recs[id].Terms
	inflated := rec
	inflated.AmountUnits *= 100
	for _, tc := range []struct {
		name       string
		reported   *xferstate.Terms
		wantCommit bool
	}{
		{"equal terms commit", &rec, true},
		{"an inflated amount aborts", &inflated, false},
		{"no terms abort", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ledgerWith(id, xferstate.Pending)
			a := &activities.Settlement{Ledger: l}
			require.NoError(t, execute(t, a, a.SettlementDecide, []activities.XferDecision{{ID: id, Commit: true, Target: "beta-main", Prepared: tc.reported}}))
			require.Len(t, l.decided, 1)
			require.Equal(t, tc.wantCommit, l.decided[0].Commit)
			require.Equal(t, tc.wantCommit, l.decided[0].Mismatch == "")
		})
	}
	l := ledgerWith(id, xferstate.Pending)
	a := &activities.Settlement{Ledger: l}
	err := execute(t, a, a.SettlementDecide, []activities.XferDecision{{ID: id, Reason: "x", Target: "gamma-main"}})
	requireClass(t, errorCase{name: "target", portErr: errors.New("addressed to"), nonRetryable: activities.ErrTypeXferRefused}, err)
	require.Empty(t, l.calls, "nothing decided")
}

// The coordinator's decision and the void of aborted holds fail for good
// only when the transfers are unknown or the request is malformed; the
// finish after a commit is always retried (the commit is final).
func TestSettlementLedgerStepsClassifyErrors(t *testing.T) {
	transient := append([]errorCase{{name: "ok"}, {name: "network", portErr: errNetwork, nonRetryable: retryable}},
		codes(retryable, apperr.Unavailable, apperr.Internal, apperr.Conflict, apperr.FailedPrecondition)...)
	decided := slices.Concat(transient, codes(activities.ErrTypeXferNotFound, apperr.NotFound, apperr.Invalid))
	finish := slices.Concat(transient, codes(retryable, apperr.NotFound, apperr.Invalid))
	ids := []uuid.UUID{uuid.New()}
	terms := ledgerWith(ids[0], xferstate.Pending).recs[ids[0]].Terms
	for _, step := range []struct {
		name  string
		cases []errorCase
		run   func(*testing.T, *activities.Settlement) error
	}{
		{"decide", decided, func(t *testing.T, a *activities.Settlement) error {
			return execute(t, a, a.SettlementDecide, []activities.XferDecision{{ID: ids[0], Commit: true, Target: "beta-main", Prepared: &terms}})
		}},
		{"void", decided, func(t *testing.T, a *activities.Settlement) error { return execute(t, a, a.SettlementVoidAborted, ids) }},
		{"finish", finish, func(t *testing.T, a *activities.Settlement) error {
			return execute(t, a, a.SettlementFinish, map[uuid.UUID]int64{ids[0]: 5000})
		}},
	} {
		for _, c := range step.cases {
			t.Run(step.name+"/"+c.name, func(t *testing.T) {
				ledger := ledgerWith(ids[0], xferstate.Pending)
				ledger.err = c.portErr
				requireClass(t, c, step.run(t, &activities.Settlement{Ledger: ledger}))
				require.Equal(t, []string{step.name}, ledger.calls)
			})
		}
	}
}

type prepareSweeper struct {
	n   int
	err error
}

func (s prepareSweeper) SweepStalePrepares(context.Context) (int, error) { return s.n, s.err }

// The participant's sweep is retried whatever failed: the next scheduled
// sweep would pick the prepares up anyway.
func TestSweepPreparesRetriesEveryError(t *testing.T) {
	cases := append([]errorCase{{name: "network", portErr: errNetwork}},
		codes(retryable, apperr.NotFound, apperr.Invalid, apperr.Unavailable, apperr.Internal)...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &activities.PrepareSweep{Sweeper: prepareSweeper{err: c.portErr}}
			requireClass(t, c, execute(t, a, a.SweepPrepares))
		})
	}
	a := &activities.PrepareSweep{Sweeper: prepareSweeper{n: 3}}
	n, err := runResult[int](t, a, a.SweepPrepares)
	require.NoError(t, err)
	require.Equal(t, 3, n)
}
