package ledgerstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
	"github.com/theprotocol-dev/theprotocol/recon"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// Limits: every input the store accepts is bounded.
const (
	MaxMemoBytes    = 280 // transfers and holds
	MaxReasonBytes  = 500 // supply operations
	MaxPageSize     = 200 // history pages
	DefaultPageSize = 50  // history pages when the caller names none
	MaxHoldTTL      = 7 * 24 * time.Hour
	MaxSweepBatch   = 1000 // holds expired per ExpireHolds call
)

// clientKeyPattern is the shape of caller-supplied idempotency keys (the same
// as the HTTP Idempotency-Key header). Keys the store makes itself start with
// '#', which this pattern excludes, so they can never collide.
var clientKeyPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,200}$`)

// SupplyGate reads the frame's supply audit for the mainframe's mint gate
// (SPEC §5): mint and burn are refused unless it answers, with a clean
// verdict (recon.Verdict: a zero delta and no reconciliation or netting
// failure). There is no gate that lets everything through: a Store built
// without one refuses mint and burn.
type SupplyGate interface {
	SupplyVerdict(ctx context.Context) (recon.Verdict, error)
}

// noGate is the gate of a Store given none: the audit is unreachable.
type noGate struct{}

func (noGate) SupplyVerdict(context.Context) (recon.Verdict, error) {
	return recon.Verdict{}, errors.New("no supply audit is configured for this TEG")
}

// Options configure a Store.
type Options struct {
	Frame    string // the frame this TEG belongs to, stamped on events
	Registry string // this registry's ID, stamped on events
	// Mainframe is true only on the frame's mainframe TEG: the one allowed to
	// mint and burn.
	Mainframe bool
	// Gate allows mint/burn only while the frame's audit is clean; without
	// one they are refused.
	Gate SupplyGate
	// Guard is the outbox emission-policy check (nil allows every type).
	Guard db.EmissionGuard
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	Log *slog.Logger
	// ExposureCaps cap what each peer registry may credit here through its
	// transit account (see xfer_exposure.go); empty: DefaultExposureCapUnits
	// for every peer.
	ExposureCaps xferstate.Caps
	// TreasuryFunder is the peer registry (the frame's mainframe) whose
	// treasury may fund this registry's treasury across registries; ""
	// accepts no such allocation.
	TreasuryFunder string
}

// Store is the TEG ledger. It is safe for concurrent use.
type Store struct {
	db        *db.Store
	pool      *pgxpool.Pool
	q         *tegdb.Queries
	outbox    *db.OutboxWriter
	mainframe bool
	gate      SupplyGate
	now       func() time.Time
	log       *slog.Logger
	caps      xferstate.Caps
	xm        *xferMetrics
	funder    string
}

// New returns a Store on pool, a migrated TEG database (db.RoleTEG).
func New(pool *pgxpool.Pool, o Options) *Store {
	if o.Gate == nil {
		o.Gate = noGate{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Store{
		db:        db.NewStore(pool, "teg"),
		pool:      pool,
		q:         tegdb.New(),
		outbox:    db.NewOutboxWriter(o.Frame, o.Registry, events.SourceTEG, o.Guard),
		mainframe: o.Mainframe,
		gate:      o.Gate,
		now:       o.Now,
		log:       o.Log,
		caps:      exposureCaps(o.ExposureCaps),
		xm:        newXferMetrics(),
		funder:    o.TreasuryFunder,
	}
}

// clock returns the current time truncated to microseconds, the precision
// Postgres stores, so values read back compare equal to values written.
func (s *Store) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// --- accounts ------------------------------------------------------------

// Account is a ledger account.
type Account struct {
	ID        string
	Kind      ledger.Kind
	CreatedAt time.Time
}

// OpenAccount creates account id of kind with a zero liquid balance. It is
// idempotent: opening an existing account of the same kind returns it
// (created=false). Errors: Invalid when id is malformed or does not match
// kind, Conflict when id exists with another kind. The registry calls it when
// it creates an agent (did:theprotocol:<uuid>, KindAgent) or a developer
// (dev:<id>, KindDeveloper); cross-registry flows open transit:<peer>
// accounts (KindTransit). System accounts exist from the migrations.
func (s *Store) OpenAccount(ctx context.Context, id string, kind ledger.Kind) (acct Account, created bool, err error) {
	k, err := ledger.KindOf(id)
	if err != nil {
		return Account{}, false, apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if k != kind {
		return Account{}, false, apperr.New(apperr.Invalid, "account %q is of kind %s, not %s", id, k, kind)
	}
	now := s.clock()
	err = s.db.Tx(ctx, func(tx pgx.Tx) error {
		n, err := s.q.AccountInsert(ctx, tx, tegdb.AccountInsertParams{ID: id, Kind: string(kind), Now: now})
		if err != nil {
			return err
		}
		created = n == 1
		if err := s.q.BalanceEnsure(ctx, tx, tegdb.BalanceEnsureParams{AccountID: id, Bucket: ledger.BucketLiquid, Now: now}); err != nil {
			return err
		}
		row, err := s.q.AccountGet(ctx, tx, id)
		if err != nil {
			return err
		}
		acct = Account{ID: row.ID, Kind: ledger.Kind(row.Kind), CreatedAt: row.CreatedAt.UTC()}
		return nil
	})
	if err != nil {
		return Account{}, false, err
	}
	if acct.Kind != kind {
		return Account{}, false, apperr.New(apperr.Conflict, "account %q already exists with kind %s", id, acct.Kind)
	}
	return acct, created, nil
}

// GetAccount returns account id, or NotFound.
func (s *Store) GetAccount(ctx context.Context, id string) (Account, error) {
	row, err := s.q.AccountGet(ctx, s.pool, id)
	if err != nil {
		return Account{}, db.NotFound(err, "account %q not found", id)
	}
	return Account{ID: row.ID, Kind: ledger.Kind(row.Kind), CreatedAt: row.CreatedAt.UTC()}, nil
}

// BucketBalance is one bucket of an account.
type BucketBalance struct {
	Bucket    ledger.Bucket
	Units     int64
	HeldUnits int64 // active holds (liquid only)
	// AvailableUnits is Units − HeldUnits: what the account can spend.
	AvailableUnits int64
}

// Balances is an account's balances, sorted by bucket.
type Balances struct {
	Account        Account
	Buckets        []BucketBalance
	AvailableUnits int64 // liquid − active holds
}

// Balances returns every bucket of account id (NotFound if it does not
// exist). It reads outside any transaction: a consistent snapshot of the one
// account.
func (s *Store) Balances(ctx context.Context, id string) (Balances, error) {
	acct, err := s.GetAccount(ctx, id)
	if err != nil {
		return Balances{}, err
	}
	rows, err := s.q.BalancesByAccount(ctx, s.pool, id)
	if err != nil {
		return Balances{}, err
	}
	out := Balances{Account: acct, Buckets: make([]BucketBalance, 0, len(rows))}
	for _, r := range rows {
		b := BucketBalance{Bucket: r.Bucket, Units: r.Units, HeldUnits: r.HeldUnits, AvailableUnits: r.Units - r.HeldUnits}
		if r.Bucket == ledger.BucketLiquid {
			out.AvailableUnits = b.AvailableUnits
		}
		out.Buckets = append(out.Buckets, b)
	}
	return out, nil
}

// Supply is the ledger's own view of the supply invariant.
type Supply struct {
	MintedUnits int64 // Σ mints (including genesis)
	BurnedUnits int64 // Σ burns
	// CompensationUnits is Σ dispute compensation minted (not in
	// MintedUnits: the supply audit reports it as its own term).
	CompensationUnits int64
	IssuanceUnits     int64 // the issuance balance: −(minted − burned)
	CirculatingUnits  int64 // Σ of every non-issuance balance, all buckets
}

// Supply reads the totals in one repeatable-read snapshot. The invariant is
// Minted + Compensation − Burned == −Issuance == Circulating.
func (s *Store) Supply(ctx context.Context) (Supply, error) {
	var out Supply
	err := s.db.TxOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		st, err := s.q.SupplyTotals(ctx, tx)
		if err != nil {
			return err
		}
		bt, err := s.q.BalanceTotals(ctx, tx)
		if err != nil {
			return err
		}
		comp, err := s.q.DisputeCompensationTotal(ctx, tx)
		if err != nil {
			return err
		}
		out = Supply{MintedUnits: st.MintedUnits, BurnedUnits: st.BurnedUnits, CompensationUnits: comp,
			IssuanceUnits: bt.IssuanceUnits, CirculatingUnits: bt.CirculatingUnits}
		return nil
	})
	return out, err
}

// --- balance locking and netted updates ------------------------------------

// balKey names a balance row.
type balKey struct {
	account string
	bucket  string
}

// lockedBalance is a balance row as read (locked or not) plus the changes
// decided in Go, applied later in one netted UPDATE.
type lockedBalance struct {
	units, held       int64 // as read
	newUnits, newHeld int64 // after the transaction's decisions
	// minAvail is the lowest available balance (units − held) the row
	// reaches in the sequence of decisions; revalidation uses it to prove
	// the same sequence is still valid from the locked values.
	minAvail int64
}

func (b *lockedBalance) available() int64 { return b.newUnits - b.newHeld }

// debit records that the row's available balance dropped (after newUnits
// or newHeld changed), for revalidation.
func (b *lockedBalance) noteAvail() { b.minAvail = min(b.minAvail, b.available()) }

// lockBalances locks the given rows FOR UPDATE (sorted by the query; the
// fee_collector must never be passed) and returns those that exist.
func (s *Store) lockBalances(ctx context.Context, tx pgx.Tx, keys map[balKey]struct{}) (map[balKey]*lockedBalance, error) {
	return s.readBalances(ctx, tx, keys, true)
}

// readBalances reads the given rows, locking them when lock is set. Keys
// are sorted here into the global lock order and each row is probed (and
// locked) in that order.
func (s *Store) readBalances(ctx context.Context, tx pgx.Tx, keys map[balKey]struct{}, lock bool) (map[balKey]*lockedBalance, error) {
	sorted := make([]balKey, 0, len(keys))
	for k := range keys {
		if k.account == ledger.AccountFeeCollector {
			return nil, fmt.Errorf("ledgerstore: fee_collector must not be locked up front (lock order)")
		}
		sorted = append(sorted, k)
	}
	sortBalKeys(sorted)
	ids := make([]string, len(sorted))
	buckets := make([]string, len(sorted))
	for i, k := range sorted {
		ids[i], buckets[i] = k.account, k.bucket
	}
	out := make(map[balKey]*lockedBalance, len(keys))
	slots := make([]lockedBalance, len(sorted)) // one allocation for every row
	// Rows come back with their key's 1-based position in the arrays.
	add := func(ord int32, units, held int64) error {
		if ord < 1 || int(ord) > len(sorted) {
			return fmt.Errorf("ledgerstore: balance row for key #%d of %d", ord, len(sorted))
		}
		b := &slots[ord-1]
		*b = lockedBalance{units: units, held: held, newUnits: units, newHeld: held, minAvail: units - held}
		out[sorted[ord-1]] = b
		return nil
	}
	if lock {
		rows, err := s.q.BalancesLockInOrder(ctx, tx, tegdb.BalancesLockInOrderParams{AccountIds: ids, Buckets: buckets})
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if err := add(r.Ord, r.Units, r.HeldUnits); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	rows, err := s.q.BalancesReadByKeys(ctx, tx, tegdb.BalancesReadByKeysParams{AccountIds: ids, Buckets: buckets})
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if err := add(r.Ord, r.Units, r.HeldUnits); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sortBalKeys sorts keys into the global lock order: (account_id, bucket)
// in byte order, the order of COLLATE "C".
func sortBalKeys(keys []balKey) {
	slices.SortFunc(keys, func(a, b balKey) int {
		if c := strings.Compare(a.account, b.account); c != 0 {
			return c
		}
		return strings.Compare(a.bucket, b.bucket)
	})
}

// errStale means an optimistic batch's decisions no longer hold against
// the locked balances; the caller reruns it with locks taken first.
var errStale = errors.New("ledgerstore: balances changed since the optimistic read")

// revalidate locks the rows of snap (read without locks, decisions applied)
// and checks that the same sequence of decisions is valid from the locked
// values: for every account that may not go negative, the lowest available
// balance the sequence reached, shifted by how much the account's available
// balance changed since the read, is still ≥ 0, and no credit overflows. It
// returns the locked rows carrying the same deltas, or errStale.
func (s *Store) revalidate(ctx context.Context, tx pgx.Tx, snap map[balKey]*lockedBalance) (map[balKey]*lockedBalance, error) {
	keys := make(map[balKey]struct{}, len(snap))
	for k, b := range snap {
		if b.newUnits != b.units || b.newHeld != b.held {
			keys[k] = struct{}{}
		}
	}
	locked, err := s.lockBalances(ctx, tx, keys)
	if err != nil {
		return nil, err
	}
	for k := range keys {
		sb, lb := snap[k], locked[k]
		if lb == nil {
			return nil, errStale
		}
		shift := (lb.units - lb.held) - (sb.units - sb.held) // both in 0..MaxInt64 for non-issuance rows
		if !ledger.MayGoNegative(k.account) && sb.minAvail+shift < 0 {
			return nil, errStale
		}
		var err1, err2 error
		lb.newUnits, err1 = money.Add(lb.units, sb.newUnits-sb.units)
		lb.newHeld, err2 = money.Add(lb.held, sb.newHeld-sb.held)
		if err1 != nil || err2 != nil {
			return nil, errStale
		}
	}
	return locked, nil
}

// reserveLiquid locks account's liquid balance and adds amount to its
// held units (a hold or a cross-registry acceptance). replayed runs again
// once the lock is held — under read committed a duplicate may have
// committed while this transaction waited — and a true result ends the
// reservation with nothing changed. what names the reservation in errors.
func (s *Store) reserveLiquid(ctx context.Context, tx pgx.Tx, account string, amount int64, what string, now time.Time, replayed func() (bool, error)) (bool, error) {
	key := balKey{account, ledger.BucketLiquid}
	locked, err := s.lockBalances(ctx, tx, map[balKey]struct{}{key: {}})
	if err != nil {
		return false, err
	}
	from, ok := locked[key]
	if !ok {
		return false, apperr.New(apperr.NotFound, "account %q not found", account)
	}
	if found, err := replayed(); found || err != nil {
		return found, err
	}
	if from.available() < amount {
		return false, apperr.New(apperr.InsufficientFunds, "available balance of %s is %s, %s needs %s",
			account, money.Format(from.available()), what, money.Format(amount))
	}
	from.newHeld += amount // available ≥ amount, so held ≤ units: no overflow
	return false, s.applyBalances(ctx, tx, locked, 0, now)
}

// applyBalances writes the changed rows of locked, plus feeUnits credited to
// fee_collector's liquid bucket, in one UPDATE. Rows are passed sorted so the
// statement's own order is deterministic (the rows are already locked; only
// fee_collector is newly locked here, last).
func (s *Store) applyBalances(ctx context.Context, tx pgx.Tx, locked map[balKey]*lockedBalance, feeUnits int64, now time.Time) error {
	keys := make([]balKey, 0, len(locked)+1)
	for k, b := range locked {
		if b.newUnits != b.units || b.newHeld != b.held {
			keys = append(keys, k)
		}
	}
	sortBalKeys(keys)
	p := tegdb.BalancesApplyParams{Now: now}
	for _, k := range keys {
		b := locked[k]
		du, err := money.Sub(b.newUnits, b.units)
		if err != nil {
			return err
		}
		dh, err := money.Sub(b.newHeld, b.held)
		if err != nil {
			return err
		}
		p.AccountIds = append(p.AccountIds, k.account)
		p.Buckets = append(p.Buckets, k.bucket)
		p.Deltas = append(p.Deltas, du)
		p.HeldDeltas = append(p.HeldDeltas, dh)
	}
	if feeUnits != 0 {
		p.AccountIds = append(p.AccountIds, ledger.AccountFeeCollector)
		p.Buckets = append(p.Buckets, ledger.BucketLiquid)
		p.Deltas = append(p.Deltas, feeUnits)
		p.HeldDeltas = append(p.HeldDeltas, 0)
	}
	if len(p.AccountIds) == 0 {
		return nil
	}
	n, err := s.q.BalancesApply(ctx, tx, p)
	if err != nil {
		return mapConstraint(err)
	}
	if n != int64(len(p.AccountIds)) {
		return fmt.Errorf("ledgerstore: balance update touched %d rows, want %d", n, len(p.AccountIds))
	}
	return nil
}

// mapConstraint turns a violated money constraint into an error that says
// so; it indicates a bug (Go checks first) or a concurrent change that
// should have been locked.
func mapConstraint(err error) error {
	if db.SQLState(err) == db.SQLStateCheck {
		return apperr.Wrap(err, apperr.Internal, "ledger invariant %s would be violated", db.ConstraintName(err))
	}
	return err
}

// --- validation helpers ------------------------------------------------------

func validateClientKey(key string) error {
	if !isClientKey(key) {
		return apperr.New(apperr.Invalid, "idempotency key must be 1-200 characters of [A-Za-z0-9._:-]")
	}
	return nil
}

// isClientKey reports whether key matches clientKeyPattern, without the
// regexp engine (it runs for every transfer).
func isClientKey(key string) bool {
	if len(key) < 1 || len(key) > 200 {
		return false
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

func validateText(field, s string, max int) error {
	if len(s) > max {
		return apperr.New(apperr.Invalid, "%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return apperr.New(apperr.Invalid, "%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return apperr.New(apperr.Invalid, "%s contains control characters", field)
		}
	}
	return nil
}

// userAccount validates that id names an agent or developer account.
func userAccount(field, id string) error {
	k, err := ledger.KindOf(id)
	if err != nil {
		return apperr.New(apperr.Invalid, "%s: %s", field, err.Error())
	}
	if !ledger.IsUserKind(k) {
		return apperr.New(apperr.Invalid, "%s: %q is a %s account; only agent and developer accounts can do this", field, id, k)
	}
	return nil
}

func newID() (uuid.UUID, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, fmt.Errorf("ledgerstore: new id: %w", err)
	}
	return id, nil
}

func isUniqueViolation(err error, constraint string) bool {
	return db.SQLState(err) == db.SQLStateUnique && db.ConstraintName(err) == constraint
}
