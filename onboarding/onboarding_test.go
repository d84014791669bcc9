package onboarding_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/onboarding"
	"github.com/theprotocol-dev/theprotocol/registry"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const avt = int64(100_000_000)

// fakeTemporal records the bond workflows started, terminated and
// signalled; the other client methods are never called by onboarding.
type fakeTemporal struct {
	client.Client
	mu         sync.Mutex
	startErr   error
	started    map[string]workflows.BondInput
	terminated []string
	signalled  []string
	signalErr  error
}

func (f *fakeTemporal) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, name any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return nil, f.startErr
	}
	if name != workflows.BondWorkflowName || len(args) != 1 {
		return nil, errors.New("unexpected workflow start")
	}
	f.started[o.ID] = args[0].(workflows.BondInput)
	return nil, nil
}

func (f *fakeTemporal) TerminateWorkflow(_ context.Context, id, _, _ string, _ ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.terminated = append(f.terminated, id)
	return nil
}

func (f *fakeTemporal) SignalWorkflow(_ context.Context, id, _, signal string, _ any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.signalErr != nil {
		return f.signalErr
	}
	f.signalled = append(f.signalled, id+" "+signal)
	return nil
}

// faultyLedger is the real ledger with failures injected per step.
type faultyLedger struct {
	*ledgerstore.Store
	openErr, voidErr error
}

func (l *faultyLedger) OpenAccount(ctx context.Context, id string, kind ledger.Kind) (ledgerstore.Account, bool, error) {
	if l.openErr != nil {
		return ledgerstore.Account{}, false, l.openErr
	}
	return l.Store.OpenAccount(ctx, id, kind)
}

func (l *faultyLedger) VoidBond(ctx context.Context, did, dev string, units int64, key string) (ledgerstore.BondMove, error) {
	if l.voidErr != nil {
		return ledgerstore.BondMove{}, l.voidErr
	}
	return l.Store.VoidBond(ctx, did, dev, units, key)
}

type env struct {
	t        *testing.T
	ctx      context.Context
	svc      *onboarding.Service
	ledger   *faultyLedger
	temporal *fakeTemporal
	reg      *registrystore.Store
	regPool  *pgxpool.Pool
	tegPool  *pgxpool.Pool
	now      time.Time
}

// newEnv wires the service on fresh registry and TEG databases (the TEG
// minted its genesis supply), with a 50 AVT bond and a fake Temporal.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	regDB, tegDB := testenv.NewDB(t, db.RoleRegistry), testenv.NewDB(t, db.RoleTEG)
	reg := registrystore.New(regDB.Pool, regDB.Name, "alpha", "alpha-main", nil)
	teg := ledgerstore.New(tegDB.Pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true, Now: clock})
	_, err := teg.Genesis(ctx, 1_000_000*avt)
	require.NoError(t, err)
	tmp := &fakeTemporal{started: map[string]workflows.BondInput{}}
	l := &faultyLedger{Store: teg}
	svc := &onboarding.Service{
		Registry: reg, Ledger: l, Now: clock,
		Bond: &onboarding.Bond{
			Units:    50 * avt,
			Maturity: config.BondSettings{MinAge: time.Hour, MinTransfers: 3, MinTrust: 5000, RecheckEvery: time.Minute},
			Temporal: tmp, TaskQueue: "alpha-main",
		},
	}
	return &env{t: t, ctx: ctx, svc: svc, ledger: l, temporal: tmp, reg: reg, regPool: regDB.Pool, tegPool: tegDB.Pool, now: now}
}

// developer signs a developer up and grants its wallet units.
func (e *env) developer(units int64) registry.Developer {
	e.t.Helper()
	su, err := e.svc.SignUpDeveloper(e.ctx, "Ada", "ada-"+uuid.NewString()[:8]+"@example.org")
	require.NoError(e.t, err)
	if units > 0 {
		_, err = e.ledger.Grant(e.ctx, ledgerstore.SupplyRequest{
			To: su.Developer.Subject(), AmountUnits: units, Reason: "test funding", Actor: "admin:test", IdempotencyKey: "fund-" + su.Developer.ID.String(),
		})
		require.NoError(e.t, err)
	}
	return su.Developer
}

// bootstrap returns the hash of a fresh bootstrap token of dev.
func (e *env) bootstrap(dev registry.Developer) []byte {
	e.t.Helper()
	_, hash := auth.NewSecret(auth.PrefixBootstrap)
	_, err := e.reg.CreateBootstrapToken(e.ctx, registrystore.NewBootstrapToken{
		ID: uuid.New(), Hash: hash, DeveloperID: dev.ID, ExpiresAt: e.now.Add(time.Hour),
	}, e.now)
	require.NoError(e.t, err)
	return hash
}

// units is what account holds in bucket (-1: no such balance row).
func (e *env) units(account string, bucket ledger.Bucket) int64 {
	e.t.Helper()
	var u int64
	err := e.tegPool.QueryRow(e.ctx, `SELECT units FROM balances WHERE account_id = $1 AND bucket = $2`, account, string(bucket)).Scan(&u)
	if errors.Is(err, pgx.ErrNoRows) {
		return -1
	}
	require.NoError(e.t, err)
	return u
}

func (e *env) count(pool *pgxpool.Pool, sql string, args ...any) int {
	e.t.Helper()
	var n int
	require.NoError(e.t, pool.QueryRow(e.ctx, sql, args...).Scan(&n))
	return n
}

// newAgentAccount is the one agent account on the TEG (onboarding opens it
// before the bond and the registry commit, so it exists whatever failed).
func (e *env) newAgentAccount() string {
	e.t.Helper()
	var id string
	require.NoError(e.t, e.tegPool.QueryRow(e.ctx, `SELECT id FROM accounts WHERE kind = 'agent'`).Scan(&id))
	return id
}

// bondMoves lists the kinds and keys of the agent's bond moves, oldest first.
func (e *env) bondMoves(did string) []string {
	e.t.Helper()
	moves, err := e.ledger.BondMoves(e.ctx, did)
	require.NoError(e.t, err)
	var out []string
	for _, m := range moves {
		out = append(out, m.Kind+" "+m.IdempotencyKey)
	}
	return out
}

func TestCreateAgentLocksTheBondAndStartsItsWorkflow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.developer(120 * avt)

	a, err := e.svc.CreateAgent(e.ctx, e.bootstrap(dev), nil)
	require.NoError(t, err)
	did := a.Agent.DID
	require.Equal(t, registry.AgentActive, a.Agent.Status)
	require.NotEmpty(t, a.ClientID)
	require.NotEmpty(t, a.ClientSecret)
	require.Equal(t, 50*avt, e.units(did, ledger.BucketLockedBond))
	require.Equal(t, 70*avt, e.units(dev.Subject(), ledger.BucketLiquid))
	require.Equal(t, []string{"lock bond-lock-" + did}, e.bondMoves(did))
	require.Equal(t, map[string]workflows.BondInput{workflows.BondWorkflowID(did): {
		AgentDID: did, DeveloperAccount: dev.Subject(), AmountUnits: 50 * avt,
		MinAge: time.Hour, MinTransfers: 3, MinTrust: 5000, RecheckEvery: time.Minute,
	}}, e.temporal.started)
	require.Empty(t, e.temporal.terminated)

	// Deregistration tells the bond workflow; no workflow is no error.
	_, err = e.svc.DeregisterAgent(e.ctx, did, dev.Subject())
	require.NoError(t, err)
	require.Equal(t, []string{workflows.BondWorkflowID(did) + " " + workflows.SignalBondDeregistered}, e.temporal.signalled)
	e.temporal.signalErr = serviceerror.NewNotFound("no such workflow")
	a2, err := e.svc.CreateAgent(e.ctx, e.bootstrap(dev), nil)
	require.NoError(t, err)
	got, err := e.svc.DeregisterAgent(e.ctx, a2.Agent.DID, dev.Subject())
	require.NoError(t, err)
	require.Equal(t, registry.AgentDeregistered, got.Status)
}

// TestAgentNotCommittedVoidsTheBond: the bond is locked and its workflow
// started, then the registry refuses the agent (its developer was
// suspended meanwhile). The bond goes back to the wallet, the workflow is
// terminated, and no agent, credential or registry event is left.
func TestAgentNotCommittedVoidsTheBond(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.developer(120 * avt)
	hash := e.bootstrap(dev)
	_, err := e.regPool.Exec(e.ctx, `UPDATE developers SET suspended_at = now()`)
	require.NoError(t, err)
	regEvents := e.count(e.regPool, `SELECT count(*) FROM outbox`)

	_, err = e.svc.CreateAgent(e.ctx, hash, nil)
	require.Equal(t, apperr.Forbidden, apperr.CodeOf(err), "the registry's error: %v", err)

	did := e.newAgentAccount()
	require.Equal(t, []string{"lock bond-lock-" + did, "void bond-void-" + did}, e.bondMoves(did))
	require.Equal(t, 120*avt, e.units(dev.Subject(), ledger.BucketLiquid), "the wallet is whole again")
	require.Zero(t, e.units(did, ledger.BucketLockedBond))
	require.Zero(t, e.units(did, ledger.BucketLiquid))
	require.Contains(t, e.temporal.started, workflows.BondWorkflowID(did))
	require.Equal(t, []string{workflows.BondWorkflowID(did)}, e.temporal.terminated)

	require.Zero(t, e.count(e.regPool, `SELECT count(*) FROM agents`))
	require.Equal(t, regEvents, e.count(e.regPool, `SELECT count(*) FROM outbox`), "no registry event")
	_, err = e.reg.PeekBootstrapToken(e.ctx, hash, e.now)
	require.NoError(t, err, "the bootstrap token is not consumed")
	require.Equal(t, 1, e.count(e.tegPool, `SELECT count(*) FROM outbox WHERE event_type = 'ReputationBondLocked'`))
	require.Equal(t, 1, e.count(e.tegPool, `SELECT count(*) FROM outbox WHERE event_type = 'ReputationBondVoided'`))
}

// TestVoidFailureLeavesTheWorkflowToVoid: when the compensating void fails
// the workflow is not terminated: its first check finds no agent and voids
// the bond with the same key.
func TestVoidFailureLeavesTheWorkflowToVoid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.developer(120 * avt)
	hash := e.bootstrap(dev)
	_, err := e.regPool.Exec(e.ctx, `UPDATE developers SET suspended_at = now()`)
	require.NoError(t, err)
	e.ledger.voidErr = errors.New("connection reset")

	_, err = e.svc.CreateAgent(e.ctx, hash, nil)
	require.Equal(t, apperr.Forbidden, apperr.CodeOf(err))
	did := e.newAgentAccount()
	require.Equal(t, []string{"lock bond-lock-" + did}, e.bondMoves(did))
	require.Equal(t, 50*avt, e.units(did, ledger.BucketLockedBond))
	require.Contains(t, e.temporal.started, workflows.BondWorkflowID(did))
	require.Empty(t, e.temporal.terminated, "the workflow stays to void the bond")
	require.Zero(t, e.count(e.regPool, `SELECT count(*) FROM agents`))
}

// TestShortWalletCreatesNoAgent: the lock fails on a short wallet; nothing
// moved, no workflow, no agent. As before this service existed, the
// agent's TEG account stays open and empty, and the token stays usable.
func TestShortWalletCreatesNoAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.developer(20 * avt)
	hash := e.bootstrap(dev)

	_, err := e.svc.CreateAgent(e.ctx, hash, nil)
	require.Equal(t, apperr.InsufficientFunds, apperr.CodeOf(err), "%v", err)

	did := e.newAgentAccount()
	require.Empty(t, e.bondMoves(did))
	require.Equal(t, 20*avt, e.units(dev.Subject(), ledger.BucketLiquid))
	require.Equal(t, int64(0), e.units(did, ledger.BucketLiquid), "the account is open and empty")
	require.Equal(t, int64(-1), e.units(did, ledger.BucketLockedBond))
	require.Empty(t, e.temporal.started)
	require.Zero(t, e.count(e.regPool, `SELECT count(*) FROM agents`))
	require.Zero(t, e.count(e.tegPool, `SELECT count(*) FROM outbox WHERE event_type LIKE 'ReputationBond%'`))

	// Funded, the same token creates the agent.
	_, err = e.ledger.Grant(e.ctx, ledgerstore.SupplyRequest{To: dev.Subject(), AmountUnits: 30 * avt, Reason: "top up", Actor: "admin:test", IdempotencyKey: "top-up"})
	require.NoError(t, err)
	a, err := e.svc.CreateAgent(e.ctx, hash, nil)
	require.NoError(t, err)
	require.Equal(t, 50*avt, e.units(a.Agent.DID, ledger.BucketLockedBond))
	require.Zero(t, e.units(dev.Subject(), ledger.BucketLiquid))
}

// TestWorkflowStartFailureVoidsTheBond: the bond is locked but its workflow
// cannot be started: the bond is voided at once, the creation is
// Unavailable and no agent is committed.
func TestWorkflowStartFailureVoidsTheBond(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.developer(120 * avt)
	e.temporal.startErr = serviceerror.NewUnavailable("temporal is down")

	_, err := e.svc.CreateAgent(e.ctx, e.bootstrap(dev), nil)
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err))
	did := e.newAgentAccount()
	require.Equal(t, []string{"lock bond-lock-" + did, "void bond-void-" + did}, e.bondMoves(did))
	require.Equal(t, 120*avt, e.units(dev.Subject(), ledger.BucketLiquid))
	require.Empty(t, e.temporal.terminated, "nothing was started")
	require.Zero(t, e.count(e.regPool, `SELECT count(*) FROM agents`))
}

// TestLedgerDownCreatesNothing: the account cannot be opened; the error
// is Unavailable (retryable) and neither developer nor agent is created.
func TestLedgerDownCreatesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.developer(120 * avt)
	hash := e.bootstrap(dev)
	e.ledger.openErr = errors.New("connection refused")

	_, err := e.svc.SignUpDeveloper(e.ctx, "Bob", "bob@example.org")
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err))
	_, err = e.svc.CreateAgent(e.ctx, hash, nil)
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err))
	require.Equal(t, 1, e.count(e.regPool, `SELECT count(*) FROM developers`))
	require.Zero(t, e.count(e.regPool, `SELECT count(*) FROM agents`))
	require.Zero(t, e.count(e.tegPool, `SELECT count(*) FROM bond_moves`))

	// A ledger error with a code keeps it.
	e.ledger.openErr = apperr.New(apperr.Conflict, "account exists with another kind")
	_, err = e.svc.CreateAgent(e.ctx, hash, nil)
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err))
}

// TestNoLedgerNoBond: a registry without a TEG creates identities alone.
func TestNoLedgerNoBond(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := &onboarding.Service{Registry: e.reg, Now: e.svc.Now}
	su, err := svc.SignUpDeveloper(e.ctx, "Cy", "cy@example.org")
	require.NoError(t, err)
	a, err := svc.CreateAgent(e.ctx, e.bootstrap(su.Developer), nil)
	require.NoError(t, err)
	require.Equal(t, int64(-1), e.units(a.Agent.DID, ledger.BucketLiquid), "no TEG account")
	_, err = svc.DeregisterAgent(e.ctx, a.Agent.DID, su.Developer.Subject())
	require.NoError(t, err)
	require.Empty(t, e.temporal.started)
	require.Empty(t, e.temporal.signalled)
}
