package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// TestBondForgedDeregistrationSignal: anyone who may signal workflows in
// the namespace sends agent-deregistered to a live agent's bond-<did>, and
// starts a BondMaturation of their own for it (another workflow ID, a
// one-millisecond wait, no criteria) and signals that too. Nothing moves:
// the bond stays locked, the treasury and the wallets unchanged, and the
// agent's workflow keeps waiting (its status says it ignored the signal).
// Once the agent really is deregistered the bond is forfeited, once.
func TestBondForgedDeregistrationSignal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n, reg, dataDir, c := startBondNode(t)
	teg := n.Pools[db.RoleTEG]
	bucket := func(account, bucket string) int64 { return bucketUnits(t, teg, account, bucket) }
	admin := c.adminToken(dataDir, reg.ID)
	dev, devTok := c.signUp("Hedy", "hedy-"+uuid.NewString()[:8]+"@example.org")
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": dev.AccountID, "amount": "60", "reason": "bond e2e"}, nil))
	var bt struct {
		Token string `json:"bootstrap_token"`
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
	var ag struct {
		DID string `json:"did"`
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/agents", bt.Token, map[string]any{}, &ag))
	carol := ag.DID
	evil := "evil-bond-" + uuid.NewString()
	t.Cleanup(func() {
		terminateBonds(n, carol)
		_ = n.Temporal.TerminateWorkflow(context.Background(), evil, "", "test over")
	})
	require.Equal(t, 50*avt, bucket(carol, "locked_bond"))
	treasury, wallet := bucket("treasury", "liquid"), bucket(dev.AccountID, "liquid")

	// The forgeries: a signal to the agent's own workflow, and a workflow
	// of one's own for the same DID, signalled as well.
	require.NoError(t, n.Temporal.SignalWorkflow(ctx, workflows.BondWorkflowID(carol), "", workflows.SignalBondDeregistered, nil))
	_, err := n.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: evil, TaskQueue: reg.TaskQueue()}, workflows.BondWorkflowName,
		workflows.BondInput{AgentDID: carol, DeveloperAccount: "dev:" + uuid.NewString(), AmountUnits: 1, MinAge: time.Millisecond, RecheckEvery: time.Second})
	require.NoError(t, err)
	require.NoError(t, n.Temporal.SignalWorkflow(ctx, evil, "", workflows.SignalBondDeregistered, nil))

	// Past the minimum age and several checks: nothing moved.
	require.Eventually(t, func() bool {
		var st workflows.BondStatus
		v, err := n.Temporal.QueryWorkflow(ctx, workflows.BondWorkflowID(carol), "", workflows.QueryBondStatus)
		return err == nil && v.Get(&st) == nil && st.Checks >= 2
	}, 30*time.Second, 200*time.Millisecond, "the agent's bond workflow keeps checking")
	require.Equal(t, 50*avt, bucket(carol, "locked_bond"), "the bond stays locked")
	require.Equal(t, treasury, bucket("treasury", "liquid"), "nothing forfeited")
	require.Equal(t, wallet, bucket(dev.AccountID, "liquid"), "nothing voided")
	require.Zero(t, max(bucket(carol, "liquid"), 0), "nothing matured: the agent has not transferred")
	for _, id := range []string{workflows.BondWorkflowID(carol), evil} {
		d, err := n.Temporal.DescribeWorkflow(ctx, id, "")
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, d.RawResponse.GetWorkflowExecutionInfo().GetStatus(), id)
	}
	var st struct {
		State string `json:"state"`
	}
	require.Equal(t, 200, c.call("GET", "/api/v1/agents/"+carol+"/reputation-bond", devTok, nil, &st))
	require.Equal(t, "locked", st.State)

	// The real deregistration forfeits the bond, once, though two
	// workflows watch it.
	require.Equal(t, 200, c.call("DELETE", "/api/v1/agents/"+carol, devTok, map[string]any{}, nil))
	require.Eventually(t, func() bool { return bucket(carol, "locked_bond") == 0 }, 60*time.Second, 100*time.Millisecond, "forfeited")
	for _, id := range []string{workflows.BondWorkflowID(carol), evil} {
		var out string
		require.NoError(t, n.Temporal.GetWorkflow(ctx, id, "").Get(ctx, &out), id)
		require.Equal(t, workflows.BondForfeited, out, id)
	}
	require.Equal(t, treasury+50*avt, bucket("treasury", "liquid"))
	var forfeits int
	require.NoError(t, teg.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_type = 'ReputationBondForfeited'`).Scan(&forfeits))
	require.Equal(t, 1, forfeits)
}
