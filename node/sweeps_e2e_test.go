package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/worker"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// pauseSchedule pauses a node's schedule so that its cron starts nothing
// during the test (a manual trigger still starts an action), and waits
// until no action it started earlier is still running.
func pauseSchedule(t *testing.T, c client.Client, id string) client.ScheduleHandle {
	t.Helper()
	ctx := context.Background()
	h := c.ScheduleClient().GetHandle(ctx, id)
	require.NoError(t, h.Pause(ctx, client.SchedulePauseOptions{Note: "the test triggers it"}))
	require.Eventually(t, func() bool {
		d, err := h.Describe(ctx)
		return err == nil && len(d.Info.RunningWorkflows) == 0
	}, 2*time.Minute, 100*time.Millisecond, "schedule %s has no action running", id)
	return h
}

// triggerOnce triggers the (paused) schedule, waits for the one action
// the trigger started to complete and decodes its result. The schedule
// must then count exactly one more action than before.
func triggerOnce(t *testing.T, c client.Client, h client.ScheduleHandle, result any) {
	t.Helper()
	ctx := context.Background()
	var d *client.ScheduleDescription
	require.Eventually(t, func() bool {
		var err error
		d, err = h.Describe(ctx)
		return err == nil
	}, 2*time.Minute, 100*time.Millisecond, "describe schedule %s", h.GetID())
	before := d.Info.NumActions
	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP}))
	var action *client.ScheduleActionResult
	require.Eventually(t, func() bool {
		// A describe is a query to the schedule's workflow: on a busy
		// Temporal it may time out while the trigger is processed; that
		// is "not yet", never the end of the wait.
		desc, err := h.Describe(ctx)
		if err != nil {
			return false
		}
		d = desc
		if d.Info.NumActions <= before || len(d.Info.RecentActions) == 0 {
			return false
		}
		action = &d.Info.RecentActions[len(d.Info.RecentActions)-1]
		return true
	}, 2*time.Minute, 100*time.Millisecond, "schedule %s starts the triggered action", h.GetID())
	require.Equal(t, before+1, d.Info.NumActions, "one trigger, one action")
	run := action.StartWorkflowResult
	require.NoError(t, c.GetWorkflow(ctx, run.WorkflowID, run.FirstExecutionRunID).Get(ctx, result))
}

// TestScheduledSweepsEndToEnd lets the two per-minute sweeps do their
// work on their own, started by their Temporal Schedules (triggered
// rather than waited for, with the cron paused so nothing else runs them)
// on the real test Temporal: HoldExpirySweep releases an expired hold on
// the source registry (the sender's funds available again, the hold
// expired, one HoldExpired event), and PrepareSweep on the target settles
// the prepares a coordinator left open — one the coordinator decided to
// commit (credited once) and one it never recorded (presumed abort). Each
// triggered run runs once and settles exactly what was due; both TEGs and
// the EventStore reconcile afterwards.
func TestScheduledSweepsEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const prepareMaxAge = time.Second
	p := startXferPair(t, func(o *node.Options) {
		o.XferSettings = config.DefaultXferSettings()
		o.XferSettings.PrepareMaxAge = prepareMaxAge
	})
	holdSweep := pauseSchedule(t, p.src.Temporal, worker.HoldExpiryScheduleID(p.srcReg.ID))
	prepareSweep := pauseSchedule(t, p.dst.Temporal, worker.PrepareSweepScheduleID(p.dstReg.ID))
	start, _ := balance(t, p.src, p.alice)
	outboxEvents := func(n *node.Node, key string) int {
		var c int
		require.NoError(t, n.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*) FROM outbox WHERE idempotency_key = $1`, key).Scan(&c))
		return c
	}

	t.Run("HoldExpirySweep releases an expired hold", func(t *testing.T) {
		var hold struct {
			ID     uuid.UUID `json:"id"`
			Status string    `json:"status"`
		}
		require.Equal(t, 201, p.c.call("POST", "/api/v1/holds", p.aliceTok,
			map[string]any{"to": p.devAccount, "amount_units": 3 * avt, "expires_in_seconds": 1}, &hold))
		require.Equal(t, "active", hold.Status)
		units, held := balance(t, p.src, p.alice)
		require.Equal(t, start, units)
		require.Equal(t, 3*avt, held)
		require.Eventually(t, func() bool {
			var past bool
			require.NoError(t, p.src.Pools[db.RoleTEG].QueryRow(ctx, `SELECT expires_at < now() FROM holds WHERE id = $1`, hold.ID).Scan(&past))
			return past
		}, 30*time.Second, 50*time.Millisecond, "the hold's expiry passes")
		// Expired but not yet released: only the sweep releases it.
		require.Equal(t, 200, p.c.call("GET", "/api/v1/holds/"+hold.ID.String(), p.aliceTok, nil, &hold))
		require.Equal(t, "active", hold.Status)

		var expired int
		triggerOnce(t, p.src.Temporal, holdSweep, &expired)
		require.Equal(t, 1, expired, "the run expired exactly the one hold that was due")
		require.Equal(t, 200, p.c.call("GET", "/api/v1/holds/"+hold.ID.String(), p.aliceTok, nil, &hold))
		require.Equal(t, "expired", hold.Status)
		units, held = balance(t, p.src, p.alice)
		require.Equal(t, start, units, "nothing moved")
		require.Zero(t, held, "the funds are available again")
		require.Equal(t, 1, outboxEvents(p.src, "hold-expired-"+hold.ID.String()), "one HoldExpired event")
		// A later run finds nothing left to do.
		triggerOnce(t, p.src.Temporal, holdSweep, &expired)
		require.Zero(t, expired)
		require.Equal(t, 1, outboxEvents(p.src, "hold-expired-"+hold.ID.String()))
	})

	t.Run("PrepareSweep settles the prepares its coordinator left open", func(t *testing.T) {
		// The coordinator decided to commit, then its saga never told the
		// target; a second prepare names a transfer it never recorded.
		amount := 2 * avt
		x, err := p.src.Ledger.BeginXfer(ctx, ledgerstore.XferRequest{From: p.alice, To: p.bob, Target: p.dstReg.ID, AmountUnits: amount, IdempotencyKey: "swept-commit"})
		require.NoError(t, err)
		unknown := ledgerstore.Xfer{ID: uuid.New(), From: p.alice, To: p.bob, AmountUnits: avt}
		for _, it := range []ledgerstore.Xfer{x, unknown} {
			rs, err := p.dst.Ledger.PrepareXfers(ctx, p.srcReg.ID, []ledgerstore.XferPrepareItem{{ID: it.ID, From: it.From, To: it.To, AmountUnits: it.AmountUnits}})
			require.NoError(t, err)
			require.Equal(t, xferstate.Prepared, rs[0].Status)
		}
		_, err = p.src.Ledger.DecideXfers(ctx, []ledgerstore.XferDecision{{ID: x.ID, Commit: true}})
		require.NoError(t, err)
		bobBefore, _ := balance(t, p.dst, p.bob)
		require.Eventually(t, func() bool {
			stale, err := p.dst.Ledger.StalePrepares(ctx, time.Now().Add(-prepareMaxAge), 100)
			require.NoError(t, err)
			return len(stale) == 2
		}, 30*time.Second, 50*time.Millisecond, "both prepares become stale")

		var settled int
		triggerOnce(t, p.dst.Temporal, prepareSweep, &settled)
		require.Equal(t, 2, settled, "the run settled both stale prepares")
		status := func(id uuid.UUID) xferstate.Status {
			var st string
			require.NoError(t, p.dst.Pools[db.RoleTEG].QueryRow(ctx, `SELECT status FROM xfer_prepares WHERE transfer_id = $1`, id).Scan(&st))
			return xferstate.Status(st)
		}
		require.Equal(t, xferstate.Committed, status(x.ID))
		require.Equal(t, xferstate.Aborted, status(unknown.ID), "presumed abort")
		fee := (amount*50 + 9_999) / 10_000
		bob, _ := balance(t, p.dst, p.bob)
		require.Equal(t, bobBefore+amount-fee, bob, "credited once, net of the fee")
		var credits int
		require.NoError(t, p.dst.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*) FROM transfers WHERE client_key = ANY($1)`,
			[]string{"#xfer:" + x.ID.String(), "#xfer:" + unknown.ID.String()}).Scan(&credits))
		require.Equal(t, 1, credits, "only the committed transfer is credited")
		require.Equal(t, 1, outboxEvents(p.dst, "xfer-"+x.ID.String()+"-credit"))
		require.Zero(t, outboxEvents(p.dst, "xfer-"+unknown.ID.String()+"-credit"))
		// A later run finds nothing left to do.
		triggerOnce(t, p.dst.Temporal, prepareSweep, &settled)
		require.Zero(t, settled)
		bob, _ = balance(t, p.dst, p.bob)
		require.Equal(t, bobBefore+amount-fee, bob)

		// The coordinator's saga would finish its side; here the test does.
		require.NoError(t, p.src.Ledger.FinishXfers(ctx, map[uuid.UUID]int64{x.ID: fee}))
		units, held := balance(t, p.src, p.alice)
		require.Equal(t, start-amount, units)
		require.Zero(t, held)
		out, _ := balance(t, p.src, ledgerstore.TransitAccount(p.dstReg.ID))
		in, _ := balance(t, p.dst, ledgerstore.TransitAccount(p.srcReg.ID))
		require.Equal(t, amount, out)
		require.Equal(t, -amount, in)
	})

	p.checkEventStore()
}
