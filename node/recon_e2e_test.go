package node_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// reconFrame is a frame whose EventStore is NOT on its mainframe: main
// (mainframe: registry, TEG, worker) mints only after asking es (registry,
// TEG, EventStore, worker) for the audit over mTLS.
type reconFrame struct {
	t        *testing.T
	frame    config.Frame
	main, es *node.Node
	mainReg  config.Registry
	esReg    config.Registry
	c        httpClient // main's API
	esAPI    httpClient
	admin    string // main's admin token
}

func startReconFrame(t *testing.T) *reconFrame {
	ctx := context.Background()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	mainReg := config.Registry{ID: "rm" + suffix, Mainframe: true, Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace}
	esReg := config.Registry{ID: "re" + suffix, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
	frame := config.Frame{ID: "fr" + suffix, TrustDomain: "fr" + suffix + ".theprotocol.test", Currency: "AVT", Genesis: true,
		GenesisSupplyUnits: 1_000_000 * avt, Registries: []config.Registry{mainReg, esReg}}
	f := &reconFrame{t: t, frame: frame, mainReg: mainReg, esReg: esReg}
	dataDir := t.TempDir() // one data dir: one dev CA for the frame
	recon := config.ReconSettings{
		CheckpointEvery: time.Minute, Grace: 2 * time.Second, Every: 200 * time.Millisecond,
		StaleAfter: time.Minute, CheckpointMaxAge: time.Hour,
	}
	var err error
	f.es, err = node.Start(ctx, node.Options{
		Frame: frame, Registry: esReg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: dataDir, Log: quietLog, ReconSettings: recon,
	})
	require.NoError(t, err)
	t.Cleanup(func() { f.es.Stop(context.Background()) })
	recon.EventStoreMTLSURL = f.es.MTLSURL()
	f.main, err = node.Start(ctx, node.Options{
		Frame: frame, Registry: mainReg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: dataDir, EventStoreURL: f.es.URL(), WriteAdminCredentials: true, Log: quietLog, ReconSettings: recon,
	})
	require.NoError(t, err)
	t.Cleanup(func() { f.main.Stop(context.Background()) })
	t.Cleanup(func() {
		for _, reg := range []string{mainReg.ID, esReg.ID} {
			deleteSchedules(f.es, reg)
			_ = f.es.Temporal.ScheduleClient().GetHandle(context.Background(), "xfer-prepare-sweep-"+reg).Delete(context.Background())
		}
	})
	f.c, f.esAPI = httpClient{t, f.main.URL()}, httpClient{t, f.es.URL()}
	f.admin = f.c.adminToken(dataDir, mainReg.ID)
	return f
}

// mint asks main to mint 1 AVT and returns the status and error message.
func (f *reconFrame) mint() (int, string) {
	f.t.Helper()
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	st := f.c.call("POST", "/api/v1/admin/mint", f.admin, map[string]any{"amount": "1", "reason": "reconciliation test"}, &body)
	return st, body.Error.Message
}

func (f *reconFrame) checkpoint() ledgerCheckpoint {
	f.t.Helper()
	var cp ledgerCheckpoint
	require.Equal(f.t, 201, f.c.call("POST", "/api/v1/admin/checkpoints", f.admin, map[string]any{}, &cp))
	return cp
}

type ledgerCheckpoint struct {
	CoversSeq int64 `json:"covers_seq"`
}

func (f *reconFrame) reconciliation() ingest.ReconciliationReport {
	f.t.Helper()
	var rep ingest.ReconciliationReport
	require.Equal(f.t, 200, f.esAPI.call("GET", "/api/v1/projections/reconciliation", "", nil, &rep))
	return rep
}

func (f *reconFrame) audit() ingest.AuditReport {
	f.t.Helper()
	var rep ingest.AuditReport
	require.Equal(f.t, 200, f.esAPI.call("GET", "/api/v1/projections/supply-audit", "", nil, &rep))
	return rep
}

// registry is reg's reconciliation once its checkpoint at or after
// coveringAtLeast has been compared.
func (f *reconFrame) registry(reg string, coveringAtLeast int64) ingest.RegistryReconciliation {
	f.t.Helper()
	var out ingest.RegistryReconciliation
	var last ingest.ReconciliationReport
	require.Eventually(f.t, func() bool {
		last = f.reconciliation()
		for _, r := range last.Registries {
			if r.Registry == reg && r.CoversSeq != nil && *r.CoversSeq >= coveringAtLeast {
				out = r
				return true
			}
		}
		return false
	}, 60*time.Second, 100*time.Millisecond, "registry %s reconciled with a checkpoint covering %d; last report %+v", reg, coveringAtLeast, &last)
	return out
}

func violation(t *testing.T, n *node.Node) float64 {
	t.Helper()
	mfs, err := n.Metrics.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "supply_invariant_violation" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no supply_invariant_violation gauge")
	return 0
}

// loseAtRelay makes the relay lose one event for good. Holding the
// relay's lock, it runs write (which commits the event, returning its
// key), numbers that event as the relay would and deletes its outbox row:
// the relay publishes everything around it, Kafka never carries it, and
// the relay's gap repair finds nothing to send. It returns the event's
// number and row.
func loseAtRelay(t *testing.T, teg *node.Node, write func() string) (seq, id int64, envelope string) {
	t.Helper()
	ctx := context.Background()
	tx, err := teg.Pools[db.RoleTEG].Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `LOCK TABLE outbox_relay_state IN EXCLUSIVE MODE`)
	require.NoError(t, err)
	key := write()
	require.NoError(t, tx.QueryRow(ctx, `DELETE FROM outbox_queue WHERE id = (SELECT id FROM outbox WHERE idempotency_key = $1) RETURNING id`, key).Scan(&id))
	require.NoError(t, tx.QueryRow(ctx, `SELECT next_seq FROM outbox_relay_state`).Scan(&seq))
	_, err = tx.Exec(ctx, `INSERT INTO outbox_seq_batches (first_seq, last_seq, ids, sequenced_at) VALUES ($1, $1, ARRAY[$2::bigint], now())`, seq, id)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE outbox_relay_state SET next_seq = $1`, seq+1)
	require.NoError(t, err)
	require.NoError(t, tx.QueryRow(ctx, `DELETE FROM outbox WHERE id = $1 RETURNING envelope::text`, id).Scan(&envelope))
	require.NoError(t, tx.Commit(ctx))
	return seq, id, envelope
}

// TestReconciliationCatchesWhatTheAuditCouldNot drives, with the real
// Postgres, Temporal and Kafka, the two failures the supply audit's terms
// cannot see (each event balances on its own):
//
//   - lost: an applied transfer event of the mainframe that the relay lost
//     for good. The EventStore's projection and log lack it; the next
//     checkpoint shows the registry and the amount; the audit fails once
//     the grace period is over, supply_invariant_violation fires, mint is
//     refused (the mainframe asks the EventStore's node over mTLS), and
//     the replay names the missing sequence number. Put back in the outbox,
//     the relay's gap repair delivers it, and after the next checkpoint
//     the audit is clean and mint allowed again.
//   - transit: the EventStore's TEG commits a participant credit from the
//     mainframe that the mainframe never decided. Netting reports the pair
//     and the amount, the audit fails and mint is refused.
func TestReconciliationCatchesWhatTheAuditCouldNot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := startReconFrame(t)
	require.Eventually(t, func() bool { return f.audit().OK }, 30*time.Second, 100*time.Millisecond, "the audit starts clean")
	st, msg := f.mint()
	require.Equal(t, 201, st, "a clean audit lets mint through the mTLS gate: %s", msg)

	alice := "did:theprotocol:" + uuid.NewString()
	_, _, err := f.main.Ledger.OpenAccount(ctx, alice, ledger.KindAgent)
	require.NoError(t, err)
	dev := "dev:recon-" + uuid.NewString()[:8]
	_, _, err = f.main.Ledger.OpenAccount(ctx, dev, ledger.KindDeveloper)
	require.NoError(t, err)
	_, err = f.main.Ledger.Grant(ctx, ledgerstore.SupplyRequest{To: alice, AmountUnits: 1000 * avt, Reason: "test", Actor: "admin:test", IdempotencyKey: "recon-fund"})
	require.NoError(t, err)

	// lost
	{
		var tr ledgerstore.Transfer
		seq, id, envelope := loseAtRelay(t, f.main, func() string {
			var err error
			tr, err = f.main.Ledger.Transfer(ctx, ledgerstore.TransferRequest{From: alice, To: dev, AmountUnits: 100 * avt, IdempotencyKey: "recon-lost"})
			require.NoError(t, err)
			return "xfer-" + tr.ID.String()
		})

		cp := f.checkpoint()
		require.Greater(t, cp.CoversSeq, seq)
		r := f.registry(f.mainReg.ID, cp.CoversSeq)
		terms := map[string]int64{}
		for _, d := range r.Differences {
			terms[d.Term] = d.Delta
		}
		require.Equal(t, tr.NetUnits, terms["liquid/agent"], "the EventStore still counts the net amount on alice: %+v", r)
		require.Equal(t, -tr.NetUnits, terms["liquid/developer"])
		require.Equal(t, tr.NetUnits, terms["projection:liquid/agent"])
		require.Equal(t, 2*tr.NetUnits, r.DeltaUnits)
		require.Contains(t, r.MissingSample, seq)
		require.Eventually(t, func() bool {
			return gauge(t, f.es, "reconciliation_delta_units", "registry", f.mainReg.ID) == float64(2*tr.NetUnits)
		},
			30*time.Second, 100*time.Millisecond, "reconciliation_delta_units{registry}")

		require.Eventually(t, func() bool { return !f.audit().OK }, 30*time.Second, 100*time.Millisecond, "the difference outlasts the grace period")
		audit := f.audit()
		require.Zero(t, audit.Delta, "each event balances: the supply terms alone see nothing")
		require.Contains(t, strings.Join(audit.Failures, "\n"), "registry "+f.mainReg.ID+": liquid/agent differs by")
		require.Eventually(t, func() bool { return violation(t, f.es) == 1 }, 30*time.Second, 100*time.Millisecond)
		st, msg := f.mint()
		require.Equal(t, 422, st)
		require.Contains(t, msg, "registry "+f.mainReg.ID)
		rr, err := ingest.Replay(ctx, f.es.Pools[db.RoleEventStore], f.frame.ID)
		require.NoError(t, err)
		require.False(t, rr.OK)
		var mine *ingest.ReplayRegistry
		for i := range rr.Registries {
			if rr.Registries[i].Registry == f.mainReg.ID {
				mine = &rr.Registries[i]
			}
		}
		require.NotNil(t, mine)
		require.Equal(t, []int64{seq}, mine.MissingSeqs, "the replay names the lost event's number")

		// Repaired: the row is back in the outbox; the relay's gap repair
		// publishes it.
		_, err = f.main.Pools[db.RoleTEG].Exec(ctx, `INSERT INTO outbox (id, event_id, idempotency_key, event_type, subject, occurred_at, envelope)
			SELECT $1, (e->>'event_id')::uuid, e->>'idempotency_key', e->>'type', e->>'subject', (e->>'occurred_at')::timestamptz, e
			FROM (SELECT $2::json AS e) AS x`, id, envelope)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			r := f.reconciliation()
			for _, reg := range r.Registries {
				if reg.Registry == f.mainReg.ID {
					return reg.MissingSeqs == 0
				}
			}
			return false
		}, 60*time.Second, 200*time.Millisecond, "the re-published event is folded")
		cp = f.checkpoint()
		r = f.registry(f.mainReg.ID, cp.CoversSeq)
		require.Empty(t, r.Differences)
		require.Eventually(t, func() bool { return f.audit().OK }, 30*time.Second, 100*time.Millisecond)
		require.Eventually(t, func() bool { return violation(t, f.es) == 0 }, 30*time.Second, 100*time.Millisecond)
		st, msg = f.mint()
		require.Equal(t, 201, st, msg)
		rr, err = ingest.Replay(ctx, f.es.Pools[db.RoleEventStore], f.frame.ID)
		require.NoError(t, err)
		require.True(t, rr.OK, "%+v", rr.Registries)
	}

	// transit
	{
		bob := "did:theprotocol:" + uuid.NewString()
		_, _, err := f.es.Ledger.OpenAccount(ctx, bob, ledger.KindAgent)
		require.NoError(t, err)
		id := uuid.New()
		amount := 50 * avt
		terms := []ledgerstore.XferPrepareItem{{ID: id, From: alice, To: bob, AmountUnits: amount}}
		res, err := f.es.Ledger.PrepareXfers(ctx, f.mainReg.ID, terms)
		require.NoError(t, err)
		require.Equal(t, "prepared", string(res[0].Status))
		res, err = f.es.Ledger.CommitXfers(ctx, f.mainReg.ID, terms)
		require.NoError(t, err)
		require.Equal(t, "committed", string(res[0].Status), "the participant credits what no decision backs")

		a, b := f.mainReg.ID, f.esReg.ID
		if b < a {
			a, b = b, a
		}
		require.Eventually(t, func() bool {
			for _, p := range f.reconciliation().Netting {
				if p.A == a && p.B == b && p.Delta == -amount && p.Failing {
					return true
				}
			}
			return false
		}, 60*time.Second, 100*time.Millisecond, "netting reports the pair and the amount, past the grace period")
		audit := f.audit()
		require.False(t, audit.OK)
		require.Contains(t, strings.Join(audit.Failures, "\n"), fmt.Sprintf("registries %s and %s: transit nets to -50", a, b))
		st, msg := f.mint()
		require.Equal(t, 422, st)
		require.Contains(t, msg, fmt.Sprintf("registries %s and %s", a, b))
		require.Eventually(t, func() bool { return violation(t, f.es) == 1 }, 30*time.Second, 100*time.Millisecond)
		require.Equal(t, float64(-amount), gauge(t, f.es, "transit_netting_delta_units", "registry_a", a, "registry_b", b))
	}
}

// gauge reads the value of gauge name whose labels include the given
// name/value pairs.
func gauge(t *testing.T, n *node.Node, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := n.Metrics.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				match = match && have[labels[i]] == labels[i+1]
			}
			if match {
				return m.GetGauge().GetValue()
			}
		}
	}
	return math.NaN() // not there (yet)
}
