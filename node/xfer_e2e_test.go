package node_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
	"github.com/theprotocol-dev/theprotocol/xfer"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// xferPair is two registries of one frame started in the test: src
// (mainframe: registry, TEG, EventStore, worker) and dst (registry, TEG,
// worker), peered over mTLS.
type xferPair struct {
	t                *testing.T
	frame            config.Frame
	src, dst         *node.Node
	srcReg, dstReg   config.Registry
	srcDir           string
	c                httpClient
	admin            string
	alice, aliceTok  string
	bob              string
	devAccount       string // the developer owning alice, on the source
	faultsMu         sync.Mutex
	faults           map[string]int // op[/after] → remaining failures (-1: until cleared)
	faultCalls       map[string]int
	faultFired       map[string]int           // op[/after] → calls the injector failed
	gates            map[string]chan struct{} // op[/after] → calls wait until it is closed
	srcOpts, dstOpts node.Options
}

// startXferPair starts the pair; tuneDst, when given, adjusts the target
// node's options before it starts.
func startXferPair(t *testing.T, tuneDst ...func(*node.Options)) *xferPair {
	ctx := context.Background()
	p := newXferPair(t, nil)
	var err error
	p.src, err = node.Start(ctx, p.srcOpts)
	require.NoError(t, err)
	t.Cleanup(func() { p.src.Stop(context.Background()) })
	p.dstOpts.EventStoreURL = p.src.URL()
	p.startDst(tuneDst...)
	require.NoError(t, p.src.ConnectPeer(ctx, p.dstReg.ID, p.dst.MTLSURL()))
	require.NoError(t, p.dst.ConnectPeer(ctx, p.srcReg.ID, p.src.MTLSURL()))
	p.src.Xfer.Client.Fault = p.fault
	p.c = httpClient{t, p.src.URL()}
	p.setUpAccounts()
	return p
}

// newXferPair names the frame and its two registries and fills both
// nodes' options without starting anything; ports, when given, are the
// fixed [src API, src mTLS, dst mTLS] ports (0 everywhere otherwise).
func newXferPair(t *testing.T, ports []int) *xferPair {
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	srcReg := config.Registry{ID: "xs" + suffix, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
	dstReg := config.Registry{ID: "xd" + suffix, Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace}
	if ports != nil {
		srcReg.APIPort, srcReg.MTLSPort, dstReg.MTLSPort = ports[0], ports[1], ports[2]
	}
	frame := config.Frame{ID: "fx" + suffix, TrustDomain: "fx" + suffix + ".theprotocol.test", Currency: "AVT", Genesis: true,
		GenesisSupplyUnits: 1_000_000 * avt, Registries: []config.Registry{srcReg, dstReg}}
	p := &xferPair{t: t, frame: frame, srcReg: srcReg, dstReg: dstReg, srcDir: t.TempDir(),
		faults: map[string]int{}, faultCalls: map[string]int{}, faultFired: map[string]int{}, gates: map[string]chan struct{}{}}
	dataDir := p.srcDir // one data dir: one dev CA for the frame
	p.srcOpts = node.Options{
		Frame: frame, Registry: srcReg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: dataDir, WriteAdminCredentials: true, Log: quietLog,
	}
	p.dstOpts = node.Options{
		Frame: frame, Registry: dstReg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: dataDir, Log: quietLog,
	}
	return p
}

// startDst starts the target node (p.dstOpts.EventStoreURL set).
func (p *xferPair) startDst(tuneDst ...func(*node.Options)) {
	t := p.t
	for _, f := range tuneDst {
		f(&p.dstOpts)
	}
	var err error
	p.dst, err = node.Start(context.Background(), p.dstOpts)
	require.NoError(t, err)
	t.Cleanup(func() { p.dst.Stop(context.Background()) })
	t.Cleanup(func() {
		for _, reg := range []string{p.srcReg.ID, p.dstReg.ID} {
			deleteSchedules(p.dst, reg)
			_ = p.dst.Temporal.ScheduleClient().GetHandle(context.Background(), "xfer-prepare-sweep-"+reg).Delete(context.Background())
		}
	})
}

// setUpAccounts creates, through the source's API (p.c), the sender alice
// (an agent with 1000 AVT) and, on the target's TEG, the receiver bob.
func (p *xferPair) setUpAccounts() {
	t, ctx, dataDir, suffix := p.t, context.Background(), p.srcDir, strings.TrimPrefix(p.srcReg.ID, "xs")
	p.admin = p.c.adminToken(dataDir, p.srcReg.ID)
	dev, devTok := p.c.signUp("Ada", "ada-"+suffix+"@example.org")
	p.devAccount = dev.AccountID
	require.Equal(t, 201, p.c.call("POST", "/api/v1/admin/grants", p.admin, map[string]any{"to": dev.AccountID, "amount": "100", "reason": "bonds"}, nil))
	var bt struct {
		Token string `json:"bootstrap_token"`
	}
	require.Equal(t, 201, p.c.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
	var ag struct {
		DID          string `json:"did"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	require.Equal(t, 201, p.c.call("POST", "/api/v1/agents", bt.Token, map[string]any{}, &ag))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(t, 200, p.c.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": ag.ClientID, "client_secret": ag.ClientSecret}, &tok))
	p.alice, p.aliceTok = ag.DID, tok.AccessToken
	t.Cleanup(func() { terminateBonds(p.dst, p.alice) }) // the namespace is shared: any node's client will do
	require.Equal(t, 201, p.c.call("POST", "/api/v1/admin/grants", p.admin, map[string]any{"to": p.alice, "amount": "1000", "reason": "e2e"}, nil))
	// The receiver: an agent account on the target TEG (the target's
	// registry would open it when creating the agent; its bond needs funds
	// the non-mainframe registry does not have in this test).
	p.bob = "did:theprotocol:" + uuid.NewString()
	_, _, err := p.dst.Ledger.OpenAccount(ctx, p.bob, ledger.KindAgent)
	require.NoError(t, err)
}

// fault fails calls while a fault is set for op ("prepare", "commit", …;
// "prepare/after" loses the reply of an applied call).
func (p *xferPair) fault(op, _ string, after bool) error {
	key := op
	if after {
		key += "/after"
	}
	p.faultsMu.Lock()
	p.faultCalls[key]++
	gate := p.gates[key]
	n := p.faults[key]
	if n > 0 {
		p.faults[key] = n - 1
	}
	if n != 0 {
		p.faultFired[key]++
	}
	p.faultsMu.Unlock()
	if gate != nil {
		<-gate
	}
	if n == 0 {
		return nil
	}
	return errors.New("injected: " + key)
}

// fired is how many calls the injector failed for key.
func (p *xferPair) fired(key string) int {
	p.faultsMu.Lock()
	defer p.faultsMu.Unlock()
	return p.faultFired[key]
}

// hold makes calls for key wait until the returned release is called.
func (p *xferPair) hold(key string) (release func()) {
	gate := make(chan struct{})
	p.faultsMu.Lock()
	p.gates[key] = gate
	p.faultsMu.Unlock()
	return func() {
		p.faultsMu.Lock()
		delete(p.gates, key)
		p.faultsMu.Unlock()
		close(gate)
	}
}

func (p *xferPair) setFault(key string, n int) {
	p.faultsMu.Lock()
	defer p.faultsMu.Unlock()
	p.faults[key] = n
}

func (p *xferPair) calls(key string) int {
	p.faultsMu.Lock()
	defer p.faultsMu.Unlock()
	return p.faultCalls[key]
}

type xferDTO struct {
	ID           uuid.UUID `json:"id"`
	Status       string    `json:"status"`
	FeeUnits     int64     `json:"fee_units"`
	NetUnits     int64     `json:"net_units"`
	Reason       string    `json:"reason"`
	Target       string    `json:"target_registry"`
	SettlementID string    `json:"settlement_workflow_id"`
	HoldID       uuid.UUID `json:"hold_id"`
}

func (p *xferPair) send(to string, amountUnits int64) xferDTO {
	p.t.Helper()
	var x xferDTO
	require.Equal(p.t, 202, p.c.call("POST", "/api/v1/transfers", p.aliceTok, map[string]any{"to": to, "amount_units": amountUnits}, &x))
	require.Equal(p.t, "pending", x.Status)
	require.Equal(p.t, p.dstReg.ID, x.Target)
	return x
}

func (p *xferPair) waitStatus(id uuid.UUID, want string, within time.Duration) xferDTO {
	p.t.Helper()
	var x xferDTO
	require.Eventually(p.t, func() bool {
		require.Equal(p.t, 200, p.c.call("GET", "/api/v1/transfers/"+id.String(), p.aliceTok, nil, &x))
		return x.Status == want
	}, within, 50*time.Millisecond, "transfer %s reaches %s (last %+v)", id, want, x)
	return x
}

// get reads transfer id once: for a state that must already hold (no
// waiting, so no window a slow machine could miss).
func (p *xferPair) get(id uuid.UUID, want string) xferDTO {
	p.t.Helper()
	var x xferDTO
	require.Equal(p.t, 200, p.c.call("GET", "/api/v1/transfers/"+id.String(), p.aliceTok, nil, &x))
	require.Equal(p.t, want, x.Status, "transfer %s", id)
	return x
}

func balance(t *testing.T, n *node.Node, account string) (units, held int64) {
	t.Helper()
	err := n.Pools[db.RoleTEG].QueryRow(context.Background(),
		`SELECT units, held_units FROM balances WHERE account_id = $1 AND bucket = 'liquid'`, account).Scan(&units, &held)
	require.NoError(t, err, account)
	return units, held
}

// senderView is what alice sees through the API: her available balance
// and the state of transfer x's hold.
func (p *xferPair) senderView(x xferDTO) (available int64, hold string) {
	p.t.Helper()
	var bal struct {
		AvailableUnits int64 `json:"available_units"`
	}
	require.Equal(p.t, 200, p.c.call("GET", "/api/v1/agents/"+p.alice+"/balance", p.aliceTok, nil, &bal))
	var h struct {
		Status string `json:"status"`
	}
	require.Equal(p.t, 200, p.c.call("GET", "/api/v1/holds/"+x.HoldID.String(), p.aliceTok, nil, &h))
	return bal.AvailableUnits, h.Status
}

func (p *xferPair) sagaState(workflowID string) string {
	p.t.Helper()
	var st workflows.SettlementStatus
	v, err := p.src.Temporal.QueryWorkflow(context.Background(), workflowID, "", workflows.QuerySettlement)
	require.NoError(p.t, err)
	require.NoError(p.t, v.Get(&st))
	return st.SagaState
}

// TestCrossRegistryTransferEndToEnd drives cross-registry transfers
// between two registries of one frame over mTLS with the real Temporal,
// Postgres and Kafka: the happy path (202 pending → committed, receiver
// credited amount − 0.5%, fee on the receiving registry), a receiver the
// target does not know (aborted, hold voided), the target unreachable
// before the decision (aborting: the compensation parks in
// CompensationFailed, shows in the admin list and a visibility query, the
// sender's hold stays active; an admin replay completes the abort and
// only then voids the hold), a commit that keeps failing after
// the decision (CommitStalled, never aborted, completes when the target
// recovers), and lost replies (duplicate participant calls apply once).
// It ends with both TEGs consistent: every transit leg matched, the
// EventStore's projections equal to both TEGs' balances and the frame's
// supply audit at delta 0.
func TestCrossRegistryTransferEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startXferPair(t)
	start, _ := balance(t, p.src, p.alice)
	sent := int64(0)

	t.Run("committed", func(t *testing.T) {
		amount := 10 * avt
		x := p.send(p.bob, amount)
		done := p.waitStatus(x.ID, "committed", 30*time.Second)
		fee := (amount*50 + 9_999) / 10_000
		require.Equal(t, fee, done.FeeUnits)
		require.Equal(t, amount-fee, done.NetUnits)
		require.Equal(t, workflows.SettlementWorkflowID(p.srcReg.ID, p.dstReg.ID, x.ID), done.SettlementID)
		sent += amount
		bob, _ := balance(t, p.dst, p.bob)
		require.Equal(t, amount-fee, bob)
		fc, _ := balance(t, p.dst, ledger.AccountFeeCollector)
		require.Equal(t, fee, fc, "the fee lands on the receiving registry")
		in, _ := balance(t, p.dst, ledgerstore.TransitAccount(p.srcReg.ID))
		out, _ := balance(t, p.src, ledgerstore.TransitAccount(p.dstReg.ID))
		require.Equal(t, amount, out)
		require.Equal(t, -amount, in)
		units, held := balance(t, p.src, p.alice)
		require.Equal(t, start-sent, units)
		require.Zero(t, held)
		require.Equal(t, workflows.SagaCommitted, p.sagaState(done.SettlementID))

		// Admin view: the settlement workflow and a UI link.
		var adm struct {
			SettlementID string `json:"settlement_workflow_id"`
			UIURL        string `json:"temporal_ui_url"`
		}
		require.Equal(t, 200, p.c.call("GET", "/api/v1/admin/transfers/"+x.ID.String(), p.admin, nil, &adm))
		require.Equal(t, done.SettlementID, adm.SettlementID)
		require.Contains(t, adm.UIURL, "/workflows/"+done.SettlementID)
	})

	t.Run("participant listener refuses callers that are not peer TEGs", func(t *testing.T) {
		td := spiffeid.RequireTrustDomainFromString(p.frame.TrustDomain)
		ca, err := identity.OpenCA(p.srcDir, td, identity.CAOptions{})
		require.NoError(t, err)
		call := func(cfg *tls.Config) (int, error) {
			cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
			resp, err := cl.Post(p.dst.MTLSURL()+xfer.PathAbort, "application/json", strings.NewReader(`{"ids":["`+uuid.NewString()+`"]}`))
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			return resp.StatusCode, nil
		}
		// A valid SVID of the frame with the wrong SPIFFE ID.
		intruder, err := ca.Issue(spiffeid.RequireFromPath(td, "/teg/intruder"), time.Hour)
		require.NoError(t, err)
		status, err := call(tlsconfig.MTLSClientConfig(intruder, ca.X509Bundle(), tlsconfig.AuthorizeAny()))
		require.NoError(t, err)
		require.Equal(t, http.StatusForbidden, status)
		// The registry's (not the TEG's) identity is no peer TEG either.
		regID, err := ca.Issue(spiffeid.RequireFromPath(td, "/registry/"+p.srcReg.ID), time.Hour)
		require.NoError(t, err)
		status, err = call(tlsconfig.MTLSClientConfig(regID, ca.X509Bundle(), tlsconfig.AuthorizeAny()))
		require.NoError(t, err)
		require.Equal(t, http.StatusForbidden, status)
		// No client certificate: the handshake fails.
		_, err = call(tlsconfig.TLSClientConfig(ca.X509Bundle(), tlsconfig.AuthorizeAny()))
		require.Error(t, err)
		// The peer itself is admitted.
		src, err := ca.Issue(spiffeid.RequireFromPath(td, "/teg/"+p.srcReg.ID), time.Hour)
		require.NoError(t, err)
		status, err = call(tlsconfig.MTLSClientConfig(src, ca.X509Bundle(), tlsconfig.AuthorizeAny()))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
	})

	t.Run("receiver unknown to the target is aborted and the hold voided", func(t *testing.T) {
		ghost := "did:theprotocol:" + uuid.NewString()
		// A stale route: the target does not (any longer) have the agent.
		p.src.Xfer.Router.Remember(ghost, p.dstReg.ID, time.Now())
		x := p.send(ghost, 3*avt)
		done := p.waitStatus(x.ID, "aborted", 30*time.Second)
		require.Contains(t, done.Reason, "rejected by the target registry")
		units, held := balance(t, p.src, p.alice)
		require.Equal(t, start-sent, units)
		require.Zero(t, held)
		var hold struct {
			Status string `json:"status"`
		}
		var full struct {
			HoldID uuid.UUID `json:"hold_id"`
		}
		require.Equal(t, 200, p.c.call("GET", "/api/v1/transfers/"+x.ID.String(), p.aliceTok, nil, &full))
		require.Equal(t, 200, p.c.call("GET", "/api/v1/holds/"+full.HoldID.String(), p.aliceTok, nil, &hold))
		require.Equal(t, "voided", hold.Status)
	})

	t.Run("target down before the decision: aborting, parked compensation keeps the hold, admin replay", func(t *testing.T) {
		p.setFault("prepare", -1)
		p.setFault("abort", -1)
		x := p.send(p.bob, 2*avt)
		done := p.waitStatus(x.ID, "aborting", 60*time.Second)
		wf := done.SettlementID
		require.Eventually(t, func() bool { return p.sagaState(wf) == workflows.SagaCompensationFailed }, 60*time.Second, 100*time.Millisecond)
		// Parked: the sender's hold stays visible, her funds reserved
		// until the target acknowledged the abort.
		done = p.get(x.ID, "aborting")
		require.Contains(t, done.Reason, "could not prepare")
		units, held := balance(t, p.src, p.alice)
		require.Equal(t, start-sent, units)
		require.Equal(t, 2*avt, held, "the parked saga's hold is not lost")
		avail, hold := p.senderView(done)
		require.Equal(t, start-sent-2*avt, avail)
		require.Equal(t, "active", hold)
		// The hold-expiry sweep leaves it alone even past its expiry.
		_, err := p.src.Pools[db.RoleTEG].Exec(ctx, `UPDATE holds SET expires_at = now() - interval '1 minute' WHERE id = $1`, done.HoldID)
		require.NoError(t, err)
		n, err := p.src.Ledger.ExpireHolds(ctx, 1000)
		require.NoError(t, err)
		require.Zero(t, n)
		_, hold = p.senderView(done)
		require.Equal(t, "active", hold)

		// Listed by the admin API and by a visibility query.
		require.Eventually(t, func() bool {
			var page struct {
				Sagas []struct {
					WorkflowID string `json:"workflow_id"`
				} `json:"sagas"`
			}
			require.Equal(t, 200, p.c.call("GET", "/api/v1/admin/sagas?state=CompensationFailed", p.admin, nil, &page))
			for _, s := range page.Sagas {
				if s.WorkflowID == wf {
					return true
				}
			}
			return false
		}, 30*time.Second, 200*time.Millisecond, "parked saga listed by the admin API")
		resp, err := p.src.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: testenv.TestNamespace,
			Query:     fmt.Sprintf("SagaState = 'CompensationFailed' AND SourceRegistry = '%s' AND TransferIDs = '%s'", p.srcReg.ID, x.ID),
		})
		require.NoError(t, err)
		require.Len(t, resp.GetExecutions(), 1)

		// The target is back; an admin replays the compensation.
		p.setFault("prepare", 0)
		p.setFault("abort", 0)
		// Bad input and the wrong caller are refused clearly.
		require.Equal(t, 400, p.c.call("POST", "/api/v1/admin/sagas/not-a-saga/replay", p.admin, map[string]any{}, nil))
		require.Equal(t, 404, p.c.call("POST", "/api/v1/admin/sagas/xsettle-nope/replay", p.admin, map[string]any{}, nil))
		require.Equal(t, 403, p.c.call("POST", "/api/v1/admin/sagas/"+wf+"/replay", p.aliceTok, map[string]any{}, nil))
		require.Equal(t, 400, p.c.call("GET", "/api/v1/admin/sagas?state=Bogus", p.admin, nil, nil))
		require.Equal(t, 403, p.c.call("GET", "/api/v1/admin/sagas", p.aliceTok, nil, nil))
		require.Equal(t, 400, p.c.call("GET", "/api/v1/admin/transfers/nope", p.admin, nil, nil))
		require.Equal(t, 404, p.c.call("GET", "/api/v1/admin/transfers/"+uuid.NewString(), p.admin, nil, nil))
		require.Equal(t, 200, p.c.call("POST", "/api/v1/admin/sagas/"+wf+"/replay", p.admin, map[string]any{}, nil))
		var res workflows.SettlementResult
		require.NoError(t, p.src.Temporal.GetWorkflow(ctx, wf, "").Get(ctx, &res))
		require.Equal(t, workflows.SettlementResult{Aborted: 1}, res)
		require.Equal(t, workflows.SagaAborted, p.sagaState(wf))
		// Acknowledged by the target: the hold is voided, the funds back.
		done = p.get(x.ID, "aborted")
		units, held = balance(t, p.src, p.alice)
		require.Equal(t, start-sent, units)
		require.Zero(t, held)
		avail, hold = p.senderView(done)
		require.Equal(t, start-sent, avail)
		require.Equal(t, "voided", hold)
	})

	t.Run("commit keeps failing after the decision: CommitStalled, then committed", func(t *testing.T) {
		p.setFault("commit", -1)
		amount := 4 * avt
		x := p.send(p.bob, amount)
		committing := p.waitStatus(x.ID, "committing", 30*time.Second)
		require.Eventually(t, func() bool { return p.sagaState(committing.SettlementID) == workflows.SagaCommitStalled }, 60*time.Second, 100*time.Millisecond)
		p.setFault("commit", 0)
		p.waitStatus(x.ID, "committed", 60*time.Second)
		sent += amount
	})

	t.Run("lost replies: every participant call delivered twice applies once", func(t *testing.T) {
		lostPrepares, lostCommits := p.fired("prepare/after"), p.fired("commit/after")
		p.setFault("prepare/after", 1)
		p.setFault("commit/after", 1)
		before, preparesBefore := p.calls("commit"), p.calls("prepare")
		amount := 5 * avt
		x := p.send(p.bob, amount)
		p.waitStatus(x.ID, "committed", 30*time.Second)
		// Both replies were really lost (the target had applied each call),
		// and each call was sent again.
		require.Equal(t, 1, p.fired("prepare/after")-lostPrepares, "a prepare reply was lost")
		require.Equal(t, 1, p.fired("commit/after")-lostCommits, "a commit reply was lost")
		require.GreaterOrEqual(t, p.calls("prepare")-preparesBefore, 2, "the prepare was retried")
		require.GreaterOrEqual(t, p.calls("commit")-before, 2, "the commit was retried")
		sent += amount
		var credits int
		require.NoError(t, p.dst.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*) FROM transfers WHERE client_key = $1`, "#xfer:"+x.ID.String()).Scan(&credits))
		require.Equal(t, 1, credits)
	})

	t.Run("participant sweeper asks the coordinator about stale prepares", func(t *testing.T) {
		begin := func(key string, amount int64) ledgerstore.Xfer {
			x, err := p.src.Ledger.BeginXfer(ctx, ledgerstore.XferRequest{From: p.alice, To: p.bob, Target: p.dstReg.ID, AmountUnits: amount, IdempotencyKey: key})
			require.NoError(t, err)
			return x
		}
		prepare := func(x ledgerstore.Xfer) {
			rs, err := p.dst.Ledger.PrepareXfers(ctx, p.srcReg.ID, []ledgerstore.XferPrepareItem{{ID: x.ID, From: x.From, To: x.To, AmountUnits: x.AmountUnits}})
			require.NoError(t, err)
			require.Equal(t, xferstate.Prepared, rs[0].Status)
		}
		unknown := ledgerstore.Xfer{ID: uuid.New(), From: p.alice, To: p.bob, AmountUnits: avt}
		aborted, committing, pending := begin("sweep-a", avt), begin("sweep-c", 2*avt), begin("sweep-p", avt)
		// Only the settlement decides a cross-registry hold.
		require.Equal(t, 422, p.c.call("POST", "/api/v1/holds/"+pending.HoldID.String()+"/post", p.aliceTok, map[string]any{}, nil))
		require.Equal(t, 422, p.c.call("POST", "/api/v1/holds/"+pending.HoldID.String()+"/void", p.aliceTok, map[string]any{}, nil))
		for _, x := range []ledgerstore.Xfer{unknown, aborted, committing, pending} {
			prepare(x)
		}
		// The abort is decided as today's sagas do (the hold kept until
		// the target acknowledged): the decision log already answers abort.
		_, err := p.src.Ledger.DecideXfers(ctx, []ledgerstore.XferDecision{{ID: aborted.ID, Reason: "test", KeepHoldOnAbort: true}, {ID: committing.ID, Commit: true}})
		require.NoError(t, err)
		got, err := p.src.Ledger.GetXfer(ctx, aborted.ID)
		require.NoError(t, err)
		require.Equal(t, xferstate.Aborting, got.Status)
		sw := &xfer.Sweeper{Store: p.dst.Ledger, Client: p.dst.Xfer.Client, MinAge: time.Minute, Now: func() time.Time { return time.Now().Add(time.Hour) }}
		n, err := sw.SweepStalePrepares(ctx)
		require.NoError(t, err)
		require.Equal(t, 3, n, "presumed abort, abort and commit; the pending one waits")
		status := func(x ledgerstore.Xfer) xferstate.Status {
			var st string
			require.NoError(t, p.dst.Pools[db.RoleTEG].QueryRow(ctx, `SELECT status FROM xfer_prepares WHERE transfer_id = $1`, x.ID).Scan(&st))
			return xferstate.Status(st)
		}
		require.Equal(t, xferstate.Aborted, status(unknown))
		require.Equal(t, xferstate.Aborted, status(aborted))
		require.Equal(t, xferstate.Committed, status(committing))
		require.Equal(t, xferstate.Prepared, status(pending))
		// The coordinator's own saga would finish these; here the test does.
		require.NoError(t, p.src.Ledger.FinishXfers(ctx, map[uuid.UUID]int64{committing.ID: (2*avt*50 + 9_999) / 10_000}))
		_, err = p.src.Ledger.VoidAbortedXfers(ctx, []uuid.UUID{aborted.ID})
		require.NoError(t, err)
		// A saga started before that change voids at the decision.
		_, err = p.src.Ledger.DecideXfers(ctx, []ledgerstore.XferDecision{{ID: pending.ID, Reason: "test"}})
		require.NoError(t, err)
		n, err = sw.SweepStalePrepares(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, xferstate.Aborted, status(pending))
		sent += 2 * avt
	})

	t.Run("concurrent transfers settle in batches; the target rejects single transfers", func(t *testing.T) {
		const n = 40
		ghosts := map[int]bool{3: true, 17: true, 29: true}
		ids := make([]uuid.UUID, n)
		var wg sync.WaitGroup
		for i := range n {
			to := p.bob
			if ghosts[i] {
				to = "did:theprotocol:" + uuid.NewString()
				p.src.Xfer.Router.Remember(to, p.dstReg.ID, time.Now())
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var x xferDTO
				require.Equal(t, 202, p.c.call("POST", "/api/v1/transfers", p.aliceTok, map[string]any{"to": to, "amount_units": avt}, &x))
				ids[i] = x.ID
			}()
		}
		wg.Wait()
		workflowsUsed := map[string]bool{}
		for i, id := range ids {
			want := "committed"
			if ghosts[i] {
				want = "aborted"
			} else {
				sent += avt
			}
			x := p.waitStatus(id, want, 60*time.Second)
			workflowsUsed[x.SettlementID] = true
		}
		// How many workflows carried them depends on timing; the batching
		// itself is asserted deterministically in the next subtest.
		t.Logf("%d transfers settled by %d workflows", n, len(workflowsUsed))
	})

	// Last: it leaves the pair's queue with a long flush timer armed.
	t.Run("transfers accepted while their pair's settlement is in flight share the next workflow", func(t *testing.T) {
		b := p.src.Xfer.Batcher
		orig := b.Opts
		// Only the end of the in-flight workflow flushes the queue (no age
		// limit, a batch far from full), so what forms does not depend on
		// timing.
		b.Configure(xfer.BatcherOptions{MaxBatch: 500, MaxAge: time.Hour, MaxInFlight: orig.MaxInFlight, MaxBacklog: orig.MaxBacklog})
		defer b.Configure(orig)
		prepares := p.calls("prepare")
		release := p.hold("prepare")
		first := p.send(p.bob, avt)
		require.Eventually(t, func() bool { return p.calls("prepare") > prepares }, 30*time.Second, 5*time.Millisecond,
			"the first transfer's workflow reaches its prepare")
		const k = 5
		var queued []xferDTO
		for range k {
			queued = append(queued, p.send(p.bob, avt))
		}
		release()
		firstWF := p.waitStatus(first.ID, "committed", 60*time.Second).SettlementID
		sent += avt
		var shared string
		for i, x := range queued {
			done := p.waitStatus(x.ID, "committed", 60*time.Second)
			sent += avt
			require.NotEqual(t, firstWF, done.SettlementID)
			if i == 0 {
				shared = done.SettlementID
			}
			require.Equal(t, shared, done.SettlementID, "the %d transfers queued behind the in-flight workflow settle in one", k)
		}
	})

	// Both TEGs agree: the transit legs match and the sender paid exactly
	// the committed transfers.
	units, held := balance(t, p.src, p.alice)
	require.Equal(t, start-sent, units)
	require.Zero(t, held)
	out, _ := balance(t, p.src, ledgerstore.TransitAccount(p.dstReg.ID))
	in, _ := balance(t, p.dst, ledgerstore.TransitAccount(p.srcReg.ID))
	require.Equal(t, sent, out)
	require.Equal(t, -sent, in)

	p.checkEventStore()
}

// checkEventStore waits for every TEG event of both registries to reach
// the frame's EventStore, then checks the audit and the projections.
func (p *xferPair) checkEventStore() { p.checkEventStoreWithin(60 * time.Second) }

// checkEventStoreWithin is checkEventStore waiting up to within for the
// events (a consumer group with members that died needs their session
// timeout to pass before the partitions move).
func (p *xferPair) checkEventStoreWithin(within time.Duration) {
	t, ctx := p.t, context.Background()
	es := p.src.Pools[db.RoleEventStore]
	if es == nil { // the frame's EventStore is on the target
		es = p.dst.Pools[db.RoleEventStore]
	}
	for _, n := range []*node.Node{p.src, p.dst} {
		reg := p.srcReg.ID
		if n == p.dst {
			reg = p.dstReg.ID
		}
		// TokensTransferred xfer-<id> comes from both TEGs, each report
		// stored under its registry.
		var keys []string
		require.NoError(t, n.Pools[db.RoleTEG].QueryRow(ctx, `SELECT coalesce(array_agg(idempotency_key), '{}') FROM outbox`).Scan(&keys))
		outboxRows := len(keys)
		ok := assertEventually(func() bool {
			var ingested int
			require.NoError(t, es.QueryRow(ctx, `SELECT count(*) FROM events WHERE registry = $1 AND idempotency_key = ANY($2)`, reg, keys).Scan(&ingested))
			return ingested == outboxRows
		}, within)
		if !ok {
			rows, _ := es.Query(ctx, `SELECT event_type, reason FROM quarantine`)
			for rows.Next() {
				var typ, reason string
				_ = rows.Scan(&typ, &reason)
				t.Logf("quarantined %s: %s", typ, reason)
			}
			rows.Close()
			var published int
			_ = n.Pools[db.RoleTEG].QueryRow(ctx, `SELECT published_seq FROM outbox_relay_state`).Scan(&published)
			t.Fatalf("not all %d TEG events of %s reached the EventStore (published %d)", outboxRows, reg, published)
		}
	}
	rep, err := ingest.Audit(ctx, es, p.frame.ID)
	require.NoError(t, err)
	require.Zero(t, rep.Delta, "%+v", rep)
	require.Equal(t, p.frame.GenesisSupplyUnits, rep.TotalCirculating)
	replay, err := ingest.Replay(ctx, es, p.frame.ID)
	require.NoError(t, err)
	require.True(t, replay.OK, "%+v", replay)
	for _, n := range []*node.Node{p.src, p.dst} {
		reg := p.srcReg.ID
		if n == p.dst {
			reg = p.dstReg.ID
		}
		rows, err := n.Pools[db.RoleTEG].Query(ctx, `SELECT account_id, bucket, units FROM balances WHERE units <> 0 ORDER BY 1, 2`)
		require.NoError(t, err)
		for rows.Next() {
			var acct, bucket string
			var units int64
			require.NoError(t, rows.Scan(&acct, &bucket, &units))
			var projected int64
			require.NoError(t, es.QueryRow(ctx, `SELECT balance FROM projection_balances WHERE account = $1 AND bucket = $2`, ingest.Qualify(reg, acct), bucket).Scan(&projected), acct)
			require.Equal(t, units, projected, "%s %s/%s", reg, acct, bucket)
		}
		require.NoError(t, rows.Err())
	}
}

func assertEventually(f func() bool, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// restartSrc stops the source node (API, batcher, worker) and starts it
// again on the same databases, with the fault injector reattached.
func (p *xferPair) restartSrc() {
	ctx := context.Background()
	p.src.Stop(ctx)
	var err error
	p.src, err = node.Start(ctx, p.srcOpts)
	require.NoError(p.t, err)
	p.t.Cleanup(func() { p.src.Stop(context.Background()) })
	p.src.Xfer.Client.Fault = p.fault
	p.c = httpClient{p.t, p.src.URL()}
	require.NoError(p.t, p.dst.ConnectPeer(ctx, p.srcReg.ID, p.src.MTLSURL()))
}

// TestCrossRegistrySettlementSurvivesCoordinatorRestart kills the source
// node (API, batcher and worker) between every pair of saga steps — before
// the target prepared, after it prepared (reply lost), after the decision
// (commit failing, saga stalled), after the target committed (reply lost) —
// and while an accepted transfer has no workflow yet (a crash between
// acceptance and start). After each restart the saga finishes on the new
// worker exactly once, recovery settles the orphan, and both registries end
// consistent with the audit at delta 0.
func TestCrossRegistrySettlementSurvivesCoordinatorRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startXferPair(t)
	start, _ := balance(t, p.src, p.alice)
	sent, fees := int64(0), int64(0)
	fee := func(amount int64) int64 { return (amount*50 + 9_999) / 10_000 }

	for i, kill := range []string{"prepare", "prepare/after", "commit", "commit/after"} {
		t.Run("killed at "+kill, func(t *testing.T) {
			amount := int64(i+1) * avt
			before := p.calls(kill)
			p.setFault(kill, -1)
			x := p.send(p.bob, amount)
			require.Eventually(t, func() bool { return p.calls(kill) > before }, 30*time.Second, 5*time.Millisecond)
			p.restartSrc()
			p.setFault(kill, 0)
			p.waitStatus(x.ID, "committed", 60*time.Second)
			sent += amount
			fees += fee(amount)
			var credits int
			require.NoError(t, p.dst.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*) FROM transfers WHERE client_key = $1`, "#xfer:"+x.ID.String()).Scan(&credits))
			require.Equal(t, 1, credits)
		})
	}

	// Accepted, but the process dies before its workflow starts.
	orphan, err := p.src.Ledger.BeginXfer(ctx, ledgerstore.XferRequest{From: p.alice, To: p.bob, Target: p.dstReg.ID, AmountUnits: 2 * avt, IdempotencyKey: "orphan-1"})
	require.NoError(t, err)
	p.restartSrc()
	n, err := p.src.Xfer.Batcher.Recover(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the orphan is resubmitted")
	p.waitStatus(orphan.ID, "committed", 60*time.Second)
	sent += 2 * avt
	fees += fee(2 * avt)

	units, held := balance(t, p.src, p.alice)
	require.Equal(t, start-sent, units)
	require.Zero(t, held)
	bob, _ := balance(t, p.dst, p.bob)
	require.Equal(t, sent-fees, bob)
	p.checkEventStore()
}

// TestCrossRegistryTargetDownBeforeTheDecision stops the target node for
// real: the transfer is decided abort, the compensation cannot reach the
// target and parks the saga in CompensationFailed with the sender's hold
// still reserving her funds; once the target is back, an admin replay
// completes the abort, voids the hold (available balance restored), and
// both registries end consistent (audit delta 0).
func TestCrossRegistryTargetDownBeforeTheDecision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startXferPair(t)
	// A first transfer learns (caches) where bob lives.
	first := p.send(p.bob, avt)
	p.waitStatus(first.ID, "committed", 30*time.Second)
	start, _ := balance(t, p.src, p.alice)

	p.dst.Stop(ctx)
	// Where an unknown agent lives cannot be asked now: 503, nothing held.
	require.Equal(t, 503, p.c.call("POST", "/api/v1/transfers", p.aliceTok, map[string]any{"to": "did:theprotocol:" + uuid.NewString(), "amount_units": avt}, nil))
	x := p.send(p.bob, 7*avt)
	done := p.waitStatus(x.ID, "aborting", 60*time.Second)
	require.Eventually(t, func() bool { return p.sagaState(done.SettlementID) == workflows.SagaCompensationFailed }, 60*time.Second, 100*time.Millisecond)
	// Parked: the hold still reserves the sender's funds.
	units, held := balance(t, p.src, p.alice)
	require.Equal(t, start, units)
	require.Equal(t, 7*avt, held, "the parked saga's hold is not lost")
	avail, hold := p.senderView(done)
	require.Equal(t, start-7*avt, avail)
	require.Equal(t, "active", hold)

	var err error
	p.dst, err = node.Start(ctx, p.dstOpts)
	require.NoError(t, err)
	t.Cleanup(func() { p.dst.Stop(context.Background()) })
	require.NoError(t, p.src.ConnectPeer(ctx, p.dstReg.ID, p.dst.MTLSURL()))
	require.Equal(t, 200, p.c.call("POST", "/api/v1/admin/sagas/"+done.SettlementID+"/replay", p.admin, map[string]any{}, nil))
	var res workflows.SettlementResult
	require.NoError(t, p.src.Temporal.GetWorkflow(ctx, done.SettlementID, "").Get(ctx, &res))
	require.Equal(t, workflows.SettlementResult{Aborted: 1}, res)
	// The target acknowledged the abort: the hold is voided.
	done = p.get(x.ID, "aborted")
	units, held = balance(t, p.src, p.alice)
	require.Equal(t, start, units)
	require.Zero(t, held, "the sender's available balance is restored")
	avail, hold = p.senderView(done)
	require.Equal(t, start, avail)
	require.Equal(t, "voided", hold)

	// The target works again.
	ok := p.send(p.bob, avt)
	p.waitStatus(ok.ID, "committed", 30*time.Second)
	bob, _ := balance(t, p.dst, p.bob)
	require.Equal(t, 2*(avt-(avt*50+9_999)/10_000), bob)
	p.checkEventStore()
}
