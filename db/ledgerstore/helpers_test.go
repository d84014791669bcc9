package ledgerstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/recon"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const avt = int64(100_000_000)

// fakeClock is a settable clock for expiry and velocity tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     testing.TB
	ctx   context.Context
	pool  *pgxpool.Pool
	store *ledgerstore.Store
	clock *fakeClock
}

type envOpts struct {
	notMainframe bool
	gate         ledgerstore.SupplyGate // nil: a clean audit (cleanGate)
	noGate       bool                   // no gate at all: mint and burn refused
	realClock    bool
	genesis      int64 // 0: 1,000,000 AVT
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	tdb := testenv.NewDB(t, db.RoleTEG)
	clock := &fakeClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	now := clock.Now
	if o.realClock {
		now = time.Now
	}
	gate := o.gate
	if gate == nil && !o.noGate {
		gate = cleanGate{}
	}
	s := ledgerstore.New(tdb.Pool, ledgerstore.Options{
		Frame: "alpha", Registry: "alpha-main", Mainframe: !o.notMainframe, Gate: gate, Now: now,
	})
	e := &env{t: t, ctx: context.Background(), pool: tdb.Pool, store: s, clock: clock}
	if !o.notMainframe {
		g := o.genesis
		if g == 0 {
			g = 1_000_000 * avt
		}
		_, err := s.Genesis(e.ctx, g)
		require.NoError(t, err)
	}
	return e
}

// cleanGate answers a clean audit: for tests whose subject is not the gate.
type cleanGate struct{}

func (cleanGate) SupplyVerdict(context.Context) (recon.Verdict, error) { return recon.Verdict{}, nil }

func agentID() string { return "did:theprotocol:" + uuid.New().String() }

// agent opens an agent account funded with units from the treasury.
func (e *env) agent(units int64) string {
	e.t.Helper()
	id := agentID()
	_, _, err := e.store.OpenAccount(e.ctx, id, ledger.KindAgent)
	require.NoError(e.t, err)
	if units > 0 {
		_, err = e.store.Grant(e.ctx, ledgerstore.SupplyRequest{
			To: id, AmountUnits: units, Reason: "test funding", Actor: "admin:test", IdempotencyKey: "fund-" + id[16:],
		})
		require.NoError(e.t, err)
	}
	return id
}

func (e *env) balance(id string) (units, held int64) {
	e.t.Helper()
	require.NoError(e.t, e.pool.QueryRow(e.ctx,
		`SELECT units, held_units FROM balances WHERE account_id = $1 AND bucket = 'liquid'`, id).Scan(&units, &held))
	return
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.pool.QueryRow(e.ctx, sql, args...).Scan(&n))
	return n
}

// snapshot is a cheap fingerprint of everything a failed operation must not
// have touched.
func (e *env) snapshot() string {
	e.t.Helper()
	var s string
	require.NoError(e.t, e.pool.QueryRow(e.ctx, `SELECT
		(SELECT count(*) FROM ledger_journal)::text || '/' ||
		(SELECT count(*) FROM transfers)::text || '/' ||
		(SELECT count(*) FROM holds)::text || '/' ||
		(SELECT count(*) FROM supply_operations)::text || '/' ||
		(SELECT count(*) FROM bond_moves)::text || '/' ||
		(SELECT count(*) FROM outbox)::text || '/' ||
		(SELECT count(*) FROM accounts)::text || '/' ||
		(SELECT coalesce(string_agg(account_id || ':' || bucket || '=' || units || '-' || held_units, ',' ORDER BY account_id, bucket), '') FROM balances)`).Scan(&s))
	return s
}

// checkInvariants asserts the ledger's global invariants (SPEC §4–§5).
func (e *env) checkInvariants() {
	t := e.t
	t.Helper()
	sup, err := e.store.Supply(e.ctx)
	require.NoError(t, err)
	require.Equal(t, sup.MintedUnits+sup.CompensationUnits-sup.BurnedUnits, sup.CirculatingUnits, "Σ non-issuance balances == issued + compensation − burned")
	require.Equal(t, -sup.IssuanceUnits, sup.CirculatingUnits, "issuance mirrors circulation")

	require.Zero(t, e.count(`SELECT count(*) FROM balances WHERE account_id <> 'issuance' AND (units < 0 OR held_units < 0 OR units < held_units)`),
		"no non-system bucket negative")
	require.Zero(t, e.count(`SELECT count(*) FROM ledger_journal j
		WHERE (SELECT sum(d::numeric) FROM unnest(j.deltas) d) <> 0`), "every journal entry sums to zero")
	require.Zero(t, e.count(`SELECT count(*) FROM ledger_journal j WHERE 0 = ANY(j.deltas) OR cardinality(j.deltas) < 2`),
		"every journal entry has two or more non-zero postings")
	// A transfer row is its own journal entry (migration 00111): exactly
	// one entry per transfer, of the transfer's kind and legs.
	require.Zero(t, e.count(`SELECT count(*) FROM transfers t WHERE (SELECT count(*) FROM ledger_journal j WHERE j.id = t.id) <> 1`),
		"every transfer is exactly one journal entry")
	require.Zero(t, e.count(`SELECT count(*) FROM transfers t JOIN ledger_journal j USING (id)
		WHERE j.kind <> CASE WHEN t.hold_id IS NULL THEN 'transfer' ELSE 'hold_post' END
		   OR j.accounts[1] <> t.sender OR j.deltas[1] <> -t.amount_units
		   OR j.accounts[2] <> t.receiver OR j.deltas[2] <> t.amount_units - t.fee_units
		   OR cardinality(j.deltas) <> CASE WHEN t.fee_units = 0 THEN 2 ELSE 3 END
		   OR (t.fee_units > 0 AND (j.accounts[3] <> 'fee_collector' OR j.deltas[3] <> t.fee_units))
		   OR j.buckets <> array_fill('liquid'::text, ARRAY[cardinality(j.deltas)])`),
		"each transfer's journal entry: sender −amount, receiver +net, fee_collector +fee")
	require.Zero(t, e.count(`
		WITH legs AS (
			SELECT u.account_id, u.bucket, sum(u.delta::numeric) AS total
			FROM ledger_journal j, unnest(j.accounts, j.buckets, j.deltas) AS u(account_id, bucket, delta)
			GROUP BY 1, 2)
		SELECT count(*) FROM balances b FULL JOIN legs l USING (account_id, bucket)
		WHERE coalesce(b.units, 0) <> coalesce(l.total, 0)`), "balances == Σ journal postings")
	require.Zero(t, e.count(`
		WITH active AS (SELECT account_id, sum(amount_units) AS held FROM holds WHERE status = 'active' GROUP BY 1)
		SELECT count(*) FROM balances b LEFT JOIN active a USING (account_id)
		WHERE b.bucket = 'liquid' AND b.held_units <> coalesce(a.held, 0)`), "held units == Σ active holds")
	require.Zero(t, e.count(`
		WITH ev AS (
			SELECT p->>'account' AS account_id, p->>'bucket' AS bucket, sum((p->>'delta')::numeric) AS total
			FROM outbox o, json_array_elements(coalesce(o.envelope->'postings', '[]'::json)) AS p
			GROUP BY 1, 2)
		SELECT count(*) FROM balances b FULL JOIN ev USING (account_id, bucket)
		WHERE coalesce(b.units, 0) <> coalesce(ev.total, 0)`), "balances == Σ event postings (what the EventStore will see)")

	// Exactly one event of each expected type per successful operation.
	type exp struct{ typ, want string }
	for _, c := range []exp{
		{ledgerstore.EventTokensTransferred, `SELECT count(*) FROM transfers`},
		{ledgerstore.EventTransactionFeeCollected, `SELECT count(*) FROM transfers WHERE fee_units > 0`},
		{ledgerstore.EventHoldPlaced, `SELECT count(*) FROM holds`},
		{ledgerstore.EventHoldPosted, `SELECT count(*) FROM holds WHERE status = 'posted'`},
		{ledgerstore.EventHoldVoided, `SELECT count(*) FROM holds WHERE status = 'voided'`},
		{ledgerstore.EventHoldExpired, `SELECT count(*) FROM holds WHERE status = 'expired'`},
		{ledgerstore.EventTokensIssued, `SELECT count(*) FROM supply_operations WHERE kind = 'mint'`},
		{ledgerstore.EventTokensBurned, `SELECT count(*) FROM supply_operations WHERE kind = 'burn'`},
		{ledgerstore.EventTreasuryGrant, `SELECT count(*) FROM supply_operations WHERE kind = 'grant'`},
		{ledgerstore.EventReputationBondLocked, `SELECT count(*) FROM bond_moves WHERE kind = 'lock'`},
		{ledgerstore.EventReputationBondMatured, `SELECT count(*) FROM bond_moves WHERE kind = 'release'`},
		{ledgerstore.EventReputationBondForfeited, `SELECT count(*) FROM bond_moves WHERE kind = 'forfeit'`},
		{ledgerstore.EventReputationBondVoided, `SELECT count(*) FROM bond_moves WHERE kind = 'void'`},
	} {
		require.Equal(t, e.count(c.want), e.count(`SELECT count(*) FROM outbox WHERE event_type = $1`, c.typ), c.typ)
	}
	require.Zero(t, e.count(`SELECT count(*) FROM transfers t WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.idempotency_key = 'xfer-' || t.id)`))
	require.Zero(t, e.count(`SELECT count(*) FROM transfers t WHERE t.fee_units > 0 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.idempotency_key = 'fee-' || t.id)`))
	require.Zero(t, e.count(`SELECT count(*) FROM transfers t WHERE NOT EXISTS (SELECT 1 FROM ledger_journal j WHERE j.id = t.id)`))
}

func key(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
