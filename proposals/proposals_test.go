package proposals_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/proposals"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

type fakeLedger struct{ got ledgerstore.ProposalInput }

func (f *fakeLedger) CreateProposal(_ context.Context, in ledgerstore.ProposalInput) (ledgerstore.Proposal, error) {
	f.got = in
	return ledgerstore.Proposal{ID: in.ID, State: governance.StateOpen}, nil
}
func (f *fakeLedger) GovernanceStakeOwners(context.Context) ([]string, error) {
	return []string{"a", "b"}, nil
}

func (f *fakeLedger) IsFederationOrigin(context.Context, string) (bool, error) { return false, nil }

type fakeDevs struct{}

func (fakeDevs) AgentDevelopers(_ context.Context, dids []string) (map[string]string, error) {
	m := map[string]string{}
	for _, d := range dids {
		m[d] = "dev"
	}
	return m, nil
}

type fakeTemporal struct {
	client.Client
	ids []string
}

func (f *fakeTemporal) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, name any, _ ...any) (client.WorkflowRun, error) {
	if name != workflows.GovernanceTallyName {
		panic(name)
	}
	f.ids = append(f.ids, o.ID)
	return nil, nil
}

var draft = governance.Draft{Title: "t", Window: 2 * time.Hour, QuorumBps: 1000, ThresholdBps: 5000}

// The proposal ID derives from the request; the developer map is passed
// only when the option is on; the limits refuse a bad draft before the
// ledger is touched.
func TestPropose(t *testing.T) {
	l, tc := &fakeLedger{}, &fakeTemporal{}
	s := &proposals.Service{Ledger: l, Registry: "r", Temporal: tc, TaskQueue: "q", Limits: governance.DefaultLimits}
	p, err := s.Propose(context.Background(), "a", "key", draft)
	require.NoError(t, err)
	require.Equal(t, proposals.ProposalID("r", "a", "key"), p.ID)
	require.NotEqual(t, proposals.ProposalID("r", "a", "key2"), p.ID)
	require.Nil(t, l.got.Developers)
	require.Equal(t, []string{workflows.GovernanceTallyWorkflowID("r", p.ID.String())}, tc.ids)

	s.Developers = fakeDevs{}
	_, err = s.Propose(context.Background(), "a", "key", draft)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "dev", "b": "dev"}, l.got.Developers)

	l.got = ledgerstore.ProposalInput{}
	bad := draft
	bad.Window = time.Minute // below the one-hour minimum
	_, err = s.Propose(context.Background(), "a", "k3", bad)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	require.Equal(t, ledgerstore.ProposalInput{}, l.got, "the ledger was not called")
}
