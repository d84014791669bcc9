package activities_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
)

// settlementPeers answers every participant call with err, recording
// which call it got.
type settlementPeers struct {
	err   error
	calls []string
}

func (p *settlementPeers) Prepare(_ context.Context, target string, items []activities.XferItem) ([]activities.XferVote, error) {
	p.calls = append(p.calls, "prepare "+target)
	return nil, p.err
}

func (p *settlementPeers) Commit(_ context.Context, target string, _ []uuid.UUID) ([]activities.XferVote, error) {
	p.calls = append(p.calls, "commit "+target)
	return nil, p.err
}

func (p *settlementPeers) Abort(_ context.Context, target string, _ []uuid.UUID) ([]activities.XferVote, error) {
	p.calls = append(p.calls, "abort "+target)
	return nil, p.err
}

// settlementLedger answers every source-side step with err.
type settlementLedger struct {
	err   error
	calls []string
}

func (l *settlementLedger) Decide(context.Context, []activities.XferDecision) ([]activities.XferOutcome, error) {
	l.calls = append(l.calls, "decide")
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
	ids := activities.IDsInput{Target: "beta-main", IDs: []uuid.UUID{uuid.New()}}
	for _, step := range []struct {
		name string
		run  func(*testing.T, *activities.Settlement) error
	}{
		{"prepare", func(t *testing.T, a *activities.Settlement) error {
			return execute(t, a, a.SettlementPrepare, activities.PrepareInput{Target: "beta-main", Items: []activities.XferItem{{ID: uuid.New()}}})
		}},
		{"commit", func(t *testing.T, a *activities.Settlement) error { return execute(t, a, a.SettlementCommit, ids) }},
		{"abort", func(t *testing.T, a *activities.Settlement) error { return execute(t, a, a.SettlementAbort, ids) }},
	} {
		for _, c := range cases {
			t.Run(step.name+"/"+c.name, func(t *testing.T) {
				peers := &settlementPeers{err: c.portErr}
				requireClass(t, c, step.run(t, &activities.Settlement{Peers: peers}))
				require.Equal(t, []string{step.name + " beta-main"}, peers.calls)
			})
		}
	}
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
	for _, step := range []struct {
		name  string
		cases []errorCase
		run   func(*testing.T, *activities.Settlement) error
	}{
		{"decide", decided, func(t *testing.T, a *activities.Settlement) error {
			return execute(t, a, a.SettlementDecide, []activities.XferDecision{{ID: ids[0], Commit: true}})
		}},
		{"void", decided, func(t *testing.T, a *activities.Settlement) error { return execute(t, a, a.SettlementVoidAborted, ids) }},
		{"finish", finish, func(t *testing.T, a *activities.Settlement) error {
			return execute(t, a, a.SettlementFinish, map[uuid.UUID]int64{ids[0]: 5000})
		}},
	} {
		for _, c := range step.cases {
			t.Run(step.name+"/"+c.name, func(t *testing.T) {
				ledger := &settlementLedger{err: c.portErr}
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
