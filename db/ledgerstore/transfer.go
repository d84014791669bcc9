package ledgerstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/money"
)

// TransferRequest asks to move AmountUnits from From's liquid balance to To.
type TransferRequest struct {
	From        string // agent or developer account; the caller must own it (checked by the API)
	To          string // agent or developer account on this registry
	AmountUnits int64  // debited from From; To receives AmountUnits − fee
	Memo        string // optional, ≤ MaxMemoBytes
	// IdempotencyKey is unique per sender: a request with a key the sender
	// already used returns the original transfer (Replayed) when its
	// parameters match, and IdempotencyReuse otherwise. Activities derive
	// it from workflow ID + step; the API uses the Idempotency-Key header.
	IdempotencyKey string
	// RequestHash, when set, is the hash of the HTTP request this transfer
	// answers (method, path and body; see api.Idempotency). It is stored
	// with the transfer, which then serves as that request's idempotency
	// record: a replay must carry the same hash. The key's earlier
	// idempotency_keys record under scope From, if any, is found in the
	// same transaction and returned as Transfer.Recorded.
	RequestHash []byte
}

// Transfer is a committed intra-registry transfer.
type Transfer struct {
	ID             uuid.UUID // UUIDv7, also the journal entry's id
	From, To       string
	AmountUnits    int64 // debited from From
	FeeUnits       int64 // credited to fee_collector
	NetUnits       int64 // credited to To (AmountUnits − FeeUnits)
	FeeBps         int64
	Memo           string
	IdempotencyKey string
	HoldID         *uuid.UUID // set when the transfer posted a hold
	CreatedAt      time.Time
	// Replayed is true when this call found the transfer already committed
	// under the same idempotency key (nothing was applied again).
	Replayed bool
	// RequestHash is the hash of the HTTP request the transfer answered
	// (nil for transfers not made through the API).
	RequestHash []byte
	// Recorded, when set, is the only field: the request carried a
	// RequestHash and its key already has a stored response (or an
	// in-flight claim) in idempotency_keys under scope From; nothing was
	// applied, and the caller answers from the record.
	Recorded *db.IdempotencyRecord
}

func transferFromRow(r tegdb.Transfer) Transfer {
	return Transfer{
		ID: r.ID, From: r.Sender, To: r.Receiver, AmountUnits: r.AmountUnits, FeeUnits: r.FeeUnits,
		NetUnits: r.AmountUnits - r.FeeUnits, FeeBps: int64(r.FeeBps), Memo: r.Memo,
		IdempotencyKey: r.ClientKey, HoldID: r.HoldID, CreatedAt: r.CreatedAt.UTC(), RequestHash: r.RequestHash,
	}
}

// Validate checks everything about r that needs no database: account shapes,
// no self-transfer, a positive amount, memo and key limits.
func (r TransferRequest) Validate() error {
	if err := userAccount("from", r.From); err != nil {
		return err
	}
	if err := userAccount("to", r.To); err != nil {
		return err
	}
	if r.From == r.To {
		return apperr.New(apperr.Invalid, "cannot transfer to the sending account itself")
	}
	if err := ledger.ValidateAmount(r.AmountUnits); err != nil {
		return apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if err := validateText("memo", r.Memo, MaxMemoBytes); err != nil {
		return err
	}
	if r.RequestHash != nil && len(r.RequestHash) != sha256.Size {
		return apperr.New(apperr.Invalid, "request hash must be %d bytes", sha256.Size)
	}
	return validateClientKey(r.IdempotencyKey)
}

// sameRequest reports whether a committed transfer answers r (a replay):
// the same parameters and, when both carry one, the same request hash.
func (t Transfer) sameRequest(r TransferRequest) bool {
	if t.Recorded != nil {
		return false
	}
	if t.RequestHash != nil && r.RequestHash != nil && !bytes.Equal(t.RequestHash, r.RequestHash) {
		return false
	}
	return t.From == r.From && t.To == r.To && t.AmountUnits == r.AmountUnits && t.Memo == r.Memo && t.HoldID == nil
}

// Transfer moves money in its own transaction (no group commit): debit
// From.liquid by AmountUnits (it must be available: liquid − active holds),
// credit To with AmountUnits − fee and fee_collector with the fee, at the
// velocity-scaled rate of ledger.FeeBpsForVelocity, writing the journal
// entry, the transfer row and TokensTransferred + TransactionFeeCollected in
// the same transaction.
//
// Errors: Invalid (bad request, amount too small for the fee), NotFound
// (unknown sender or receiver), InsufficientFunds, IdempotencyReuse (key
// used for a different transfer). Replays return the original with
// Replayed=true. Use GroupCommitter.Transfer for throughput.
func (s *Store) Transfer(ctx context.Context, req TransferRequest) (Transfer, error) {
	if err := req.Validate(); err != nil {
		return Transfer{}, err
	}
	it := &xfer{req: req}
	s.runSingle(ctx, it)
	return it.res, it.err
}

// xfer is one transfer moving through applyTransfers.
type xfer struct {
	req  TransferRequest
	res  Transfer
	err  error
	done chan struct{} // closed by the group committer when res/err are final

	// Per-attempt state of applyTransfers (reset at its start; fields
	// rather than per-batch maps keyed by *xfer, which cost an allocation
	// and a hash per transfer per batch).
	settled  bool  // answered by a committed row or a stored record
	hashless bool  // settled by a transfer row that stores no request hash
	dupOf    *xfer // an earlier transfer of the batch with the same business key
}

// runSingle applies one transfer in its own transaction. A unique violation
// on the business key means a concurrent duplicate committed first: one
// more attempt then finds it and replays it.
func (s *Store) runSingle(ctx context.Context, it *xfer) {
	for attempt := 0; attempt < 2; attempt++ {
		err := s.runBatch(ctx, []*xfer{it})
		if err == nil {
			return
		}
		if isUniqueViolation(err, "transfers_client_key") && attempt == 0 {
			continue
		}
		it.res, it.err = Transfer{}, err
		return
	}
}

// runBatch commits items in one transaction: optimistically first (rows
// written before the balance locks are taken, so concurrent batches overlap
// their inserts), and if the balances moved underneath, once more with the
// locks taken first.
func (s *Store) runBatch(ctx context.Context, items []*xfer) error {
	err := s.db.TxOpts(ctx, batchTxOptions, func(tx pgx.Tx) error { return s.applyTransfers(ctx, tx, items, false) })
	if errors.Is(err, errStale) {
		staleBatches.Inc()
		err = s.db.TxOpts(ctx, batchTxOptions, func(tx pgx.Tx) error { return s.applyTransfers(ctx, tx, items, true) })
	}
	return err
}

// batchTxOptions begin a transfer batch's transaction with generic plans
// for its prepared statements (in the same round trip as BEGIN). Left to
// itself Postgres re-planned the balance reads, locks and updates and the
// velocity counts on every execution (custom plans: ~0.2 ms of database
// CPU each, ~0.7 ms per batch — about 3 µs per transfer in a batch of 256,
// 10 µs in the smaller batches of the HTTP path). Their plans do not
// depend on the parameter values: one primary-key or pair-index probe per
// array element, in array order (the lateral FOR UPDATE keeps the nested
// loop, hence the lock order, in either mode). They do depend on table
// statistics, like any plan: a cached generic plan is re-made when
// (auto)ANALYZE updates them (checked: a velocity plan made on an empty
// transfers table scans it, and switches to transfers_pair_time after
// ANALYZE in the same session).
var batchTxOptions = pgx.TxOptions{BeginQuery: "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan"}

// applyTransfers decides and writes items in tx. Business failures
// (NotFound, InsufficientFunds, Invalid, IdempotencyReuse) are recorded on
// their item and do not abort the transaction; the returned error is for
// failures that doom the whole transaction. Items must be pre-validated.
// Results are only final once the transaction commits.
//
// With lockFirst, balances are read FOR UPDATE before anything is decided
// (the pessimistic order). Without it, balances are read without locks, the
// transfers are decided and their rows (journal, transfers, outbox)
// written, and only then are the touched balances locked and the decisions
// revalidated against the locked values (errStale if they no longer hold).
// The optimistic order keeps balance rows locked only for the netted UPDATE
// and the commit, so concurrent batches overlap their expensive inserts
// instead of queueing behind each other's row locks.
func (s *Store) applyTransfers(ctx context.Context, tx pgx.Tx, items []*xfer, lockFirst bool) error {
	now := s.clock()
	for _, it := range items {
		it.res, it.err = Transfer{}, nil
		it.settled, it.hashless, it.dupOf = false, false, nil
	}

	// 1. Replays: keys this sender already used, committed earlier, and
	//    duplicates within the batch (the later ones answer like the first).
	type bizKey struct{ from, key string }
	first := make(map[bizKey]*xfer, len(items))
	kp := tegdb.TransfersByClientKeysParams{Senders: make([]string, 0, len(items)), ClientKeys: make([]string, 0, len(items))}
	for _, it := range items {
		k := bizKey{it.req.From, it.req.IdempotencyKey}
		if f, ok := first[k]; ok {
			it.dupOf = f
			continue
		}
		first[k] = it
		kp.Senders = append(kp.Senders, k.from)
		kp.ClientKeys = append(kp.ClientKeys, k.key)
	}
	existing, err := s.q.TransfersByClientKeys(ctx, tx, kp)
	if err != nil {
		return err
	}
	for _, row := range existing {
		it := first[bizKey{row.Sender, row.ClientKey}]
		t := transferFromRow(row)
		it.hashless = t.RequestHash == nil
		if t.sameRequest(it.req) {
			t.Replayed = true
			it.res = t
		} else {
			it.err = reuseError(it.req.IdempotencyKey)
		}
		it.settled = true
	}
	if err := s.findRecords(ctx, tx, items); err != nil {
		return err
	}

	// 2. Read every involved liquid balance (lockFirst: locked, in the
	//    global order; otherwise unlocked, revalidated in step 5).
	keys := make(map[balKey]struct{}, 2*len(items))
	pairs := make(map[[2]string]int)
	for _, it := range items {
		if it.settled || it.dupOf != nil {
			continue
		}
		keys[balKey{it.req.From, ledger.BucketLiquid}] = struct{}{}
		keys[balKey{it.req.To, ledger.BucketLiquid}] = struct{}{}
		pairs[[2]string{it.req.From, it.req.To}] = 0
	}
	if len(keys) == 0 {
		resolveDups(items)
		return nil
	}
	locked, err := s.readBalances(ctx, tx, keys, lockFirst)
	if err != nil {
		return err
	}

	// 3. Fee velocity: recent transfers per ordered pair, on the governed
	// fee curve in force (read in this transaction: an enacted change
	// applies from the next batch on).
	curve, err := s.feeCurve(ctx, tx)
	if err != nil {
		return err
	}
	pc := tegdb.TransferPairCountsParams{Since: now.Add(-ledger.VelocityWindow), MaxCount: int32(curve.CountCap()),
		Senders: make([]string, 0, len(pairs)), Receivers: make([]string, 0, len(pairs))}
	for p := range pairs {
		pc.Senders = append(pc.Senders, p[0])
		pc.Receivers = append(pc.Receivers, p[1])
	}
	counts, err := s.q.TransferPairCounts(ctx, tx, pc)
	if err != nil {
		return err
	}
	if len(counts) != len(pc.Senders) {
		return fmt.Errorf("ledgerstore: %d velocity counts for %d pairs", len(counts), len(pc.Senders))
	}
	for i, c := range counts { // one count per pair, in array order
		pairs[[2]string{pc.Senders[i], pc.Receivers[i]}] = int(c)
	}

	// 4. Decide each transfer in arrival order against the running balances.
	accepted := make([]Transfer, 0, len(items))
	var feeTotal int64
	for _, it := range items {
		if it.settled || it.dupOf != nil {
			continue
		}
		r := it.req
		from, ok := locked[balKey{r.From, ledger.BucketLiquid}]
		if !ok {
			it.err = apperr.New(apperr.NotFound, "sending account %q not found", r.From)
			continue
		}
		to, ok := locked[balKey{r.To, ledger.BucketLiquid}]
		if !ok {
			it.err = apperr.New(apperr.NotFound, "receiving account %q not found on this registry", r.To)
			continue
		}
		pair := [2]string{r.From, r.To}
		fee, err := ledger.TransferFee(r.AmountUnits, curve.BpsForVelocity(pairs[pair]))
		if err != nil {
			it.err = apperr.New(apperr.Invalid, "%s", err.Error())
			continue
		}
		if from.available() < r.AmountUnits {
			it.err = apperr.New(apperr.InsufficientFunds, "available balance of %s is %s, transfer needs %s",
				r.From, money.Format(from.available()), money.Format(r.AmountUnits))
			continue
		}
		newTo, err := money.Add(to.newUnits, fee.NetUnits)
		if err != nil {
			it.err = apperr.New(apperr.Invalid, "receiving balance would overflow")
			continue
		}
		newFee, err := money.Add(feeTotal, fee.FeeUnits)
		if err != nil {
			it.err = apperr.New(apperr.Invalid, "fee total would overflow")
			continue
		}
		id, err := newID()
		if err != nil {
			return err
		}
		from.newUnits -= r.AmountUnits // available ≥ amount ≥ 0: cannot underflow
		from.noteAvail()
		to.newUnits = newTo
		feeTotal = newFee
		pairs[pair]++
		t := Transfer{
			ID: id, From: r.From, To: r.To, AmountUnits: r.AmountUnits, FeeUnits: fee.FeeUnits,
			NetUnits: fee.NetUnits, FeeBps: fee.Bps, Memo: r.Memo, IdempotencyKey: r.IdempotencyKey, CreatedAt: now,
			RequestHash: r.RequestHash,
		}
		it.res = t
		accepted = append(accepted, t)
	}
	resolveDups(items)
	if len(accepted) == 0 {
		return nil
	}

	// 5. Write journal, transfers, events and the netted balances
	//    (fee_collector last).
	if lockFirst {
		if err := s.applyBalances(ctx, tx, locked, feeTotal, now); err != nil {
			return err
		}
		return s.insertTransfers(ctx, tx, accepted, nil, now)
	}
	if err := s.insertTransfers(ctx, tx, accepted, nil, now); err != nil {
		return err
	}
	if testHookBeforeRevalidate != nil {
		testHookBeforeRevalidate()
	}
	if locked, err = s.revalidate(ctx, tx, locked); err != nil {
		return err
	}
	if err := s.recheckVelocity(ctx, tx, pc, counts, pairs); err != nil {
		return err
	}
	return s.applyBalances(ctx, tx, locked, feeTotal, now)
}

// recheckVelocity, run once the optimistic batch holds its senders' locks,
// proves that the velocity counts its fees were set from are still exact:
// counted again now, each pair must show its first count plus this batch's
// own transfers and nothing else. A batch of the same pair that committed
// in between (it locks the same sender, so it committed before our lock was
// granted) would otherwise have been invisible, and both batches would have
// priced their transfers as if the other did not exist; errStale reruns the
// batch with the locks taken before the counts. Pairs whose first count
// already reached the cap are priced at the maximum whatever came since.
func (s *Store) recheckVelocity(ctx context.Context, tx pgx.Tx, first tegdb.TransferPairCountsParams, firstCounts []int32, now map[[2]string]int) error {
	p := tegdb.TransferPairCountsParams{Since: first.Since}
	var want []int
	for i := range first.Senders {
		pair := [2]string{first.Senders[i], first.Receivers[i]}
		if firstCounts[i] >= first.MaxCount || now[pair] == int(firstCounts[i]) { // at the curve's cap
			continue
		}
		p.Senders = append(p.Senders, pair[0])
		p.Receivers = append(p.Receivers, pair[1])
		want = append(want, now[pair])
		// One more than expected is enough to see that something came in.
		p.MaxCount = max(p.MaxCount, int32(now[pair]+1))
	}
	if len(want) == 0 {
		return nil
	}
	counts, err := s.q.TransferPairCounts(ctx, tx, p)
	if err != nil {
		return err
	}
	if len(counts) != len(want) {
		return fmt.Errorf("ledgerstore: %d velocity counts for %d pairs", len(counts), len(want))
	}
	for i, c := range counts {
		if int(c) != want[i] {
			return errStale
		}
	}
	return nil
}

// testHookBeforeRevalidate, when set by a test, runs between the optimistic
// writes and the revalidation.
var testHookBeforeRevalidate func()

// insertTransfers writes the transfer rows of committed-to-be transfers in
// one statement (TransfersWrite, which also allocates and queues the outbox
// ids), then their events by COPY; extra events (e.g. HoldPosted) are
// written after them. Each row is its own journal entry (kind 'transfer',
// or 'hold_post' when it has a HoldID; see ledger_journal, migration 00111).
func (s *Store) insertTransfers(ctx context.Context, tx pgx.Tx, ts []Transfer, extra []events.Envelope, now time.Time) error {
	n := len(ts)
	idBuf := make([]byte, 32*n) // ids, then hold ids
	evs, err := s.encodeTransferEvents(ctx, tx, ts, now)
	if err != nil {
		return err
	}
	defer evs.release()
	p := tegdb.TransfersWriteParams{
		Now: now, Ids: make([][]byte, n), Senders: make([]string, n), Receivers: make([]string, n),
		Amounts: make([]int64, n), Fees: make([]int64, n), FeeBps: make([]int32, n), Memos: make([]string, n),
		ClientKeys: make([]string, n), HoldIds: make([][]byte, n), RequestHashes: make([][]byte, n),
	}
	for i, t := range ts {
		p.Ids[i] = uuidBytes(idBuf, i, t.ID)
		p.Senders[i], p.Receivers[i], p.Amounts[i], p.Fees[i] = t.From, t.To, t.AmountUnits, t.FeeUnits
		p.FeeBps[i], p.Memos[i], p.ClientKeys[i] = int32(t.FeeBps), t.Memo, t.IdempotencyKey
		hold := uuid.Nil // all zero: no hold
		if t.HoldID != nil {
			hold = *t.HoldID
		}
		p.HoldIds[i] = uuidBytes(idBuf, n+i, hold)
		p.RequestHashes[i] = t.RequestHash
		if p.RequestHashes[i] == nil {
			p.RequestHashes[i] = []byte{} // stored as NULL
		}
	}
	p.EventCount = int32(len(evs.keys))
	outboxIDs, err := s.q.TransfersWrite(ctx, tx, p)
	if err != nil {
		return mapConstraint(err)
	}
	if err := s.copyEvents(ctx, tx, evs, outboxIDs, now); err != nil {
		return err
	}
	return s.writeEvents(ctx, tx, extra)
}

// findRecords settles the unsettled API transfers (those with a
// RequestHash) whose key already has an idempotency_keys record under scope
// From: a response stored by an earlier request with the same key (a
// failure, or any response from before transfers were their own records),
// or a claim still in flight. One index probe per transfer, no extra commit.
// A record also takes precedence over a row without a request hash (a
// transfer made before rows stored one, whose response was recorded then):
// the record compares request bytes, the row only parameters.
func (s *Store) findRecords(ctx context.Context, tx pgx.Tx, items []*xfer) error {
	candidate := func(it *xfer) bool {
		return it.req.RequestHash != nil && it.dupOf == nil && (!it.settled || it.hashless)
	}
	var p tegdb.IdempotencyKeysGetParams
	for _, it := range items {
		if candidate(it) {
			p.Scopes = append(p.Scopes, it.req.From)
			p.Keys = append(p.Keys, it.req.IdempotencyKey)
		}
	}
	if len(p.Keys) == 0 {
		return nil
	}
	rows, err := s.q.IdempotencyKeysGet(ctx, tx, p)
	if err != nil || len(rows) == 0 {
		return err
	}
	type sk struct{ scope, key string }
	recs := make(map[sk]*db.IdempotencyRecord, len(rows))
	for _, row := range rows {
		rec := &db.IdempotencyRecord{RequestHash: row.RequestHash, Method: row.Method, Path: row.Path, Body: row.ResponseBody, CreatedAt: row.CreatedAt}
		if row.StatusCode != nil {
			rec.StatusCode = int(*row.StatusCode)
		}
		recs[sk{row.Scope, row.Key}] = rec
	}
	for _, it := range items {
		if !candidate(it) {
			continue
		}
		if rec := recs[sk{it.req.From, it.req.IdempotencyKey}]; rec != nil {
			it.res, it.err = Transfer{Recorded: rec}, nil
			it.settled = true
		}
	}
	return nil
}

// TransferByClientKey returns the transfer sender made with idempotency key
// key, if any.
func (s *Store) TransferByClientKey(ctx context.Context, sender, key string) (Transfer, bool, error) {
	rows, err := s.q.TransfersByClientKeys(ctx, s.pool, tegdb.TransfersByClientKeysParams{Senders: []string{sender}, ClientKeys: []string{key}})
	if err != nil || len(rows) == 0 {
		return Transfer{}, false, err
	}
	return transferFromRow(rows[0]), true, nil
}

func resolveDups(items []*xfer) {
	for _, it := range items {
		f := it.dupOf
		if f == nil {
			continue
		}
		switch {
		case f.err != nil:
			it.err = f.err
		case f.res.Recorded != nil:
			it.res = f.res
		case f.res.sameRequest(it.req):
			it.res = f.res
			it.res.Replayed = true
		default:
			it.err = reuseError(it.req.IdempotencyKey)
		}
	}
}

func reuseError(key string) error {
	return apperr.New(apperr.IdempotencyReuse, "idempotency key %q was already used for a different transfer", key)
}

// GetTransfer returns transfer id, or NotFound.
func (s *Store) GetTransfer(ctx context.Context, id uuid.UUID) (Transfer, error) {
	row, err := s.q.TransferGet(ctx, s.pool, id)
	if err != nil {
		return Transfer{}, db.NotFound(err, "transfer %s not found", id)
	}
	return transferFromRow(row), nil
}

// ListTransfers returns up to limit transfers sent or received by account,
// newest first, starting below the cursor before (uuid.Nil: from the
// newest). limit is clamped to 1..MaxPageSize (0 means DefaultPageSize).
// next is the cursor of the following page, uuid.Nil when this page is the
// last. NotFound when the account does not exist.
func (s *Store) ListTransfers(ctx context.Context, account string, before uuid.UUID, limit int) (page []Transfer, next uuid.UUID, err error) {
	if _, err := s.GetAccount(ctx, account); err != nil {
		return nil, uuid.Nil, err
	}
	switch {
	case limit <= 0:
		limit = DefaultPageSize
	case limit > MaxPageSize:
		limit = MaxPageSize
	}
	if before == uuid.Nil {
		before = uuid.Max
	}
	// One extra row tells whether another page follows.
	rows, err := s.q.TransfersHistory(ctx, s.pool, tegdb.TransfersHistoryParams{Account: account, Before: before, MaxRows: int32(limit + 1)})
	if err != nil {
		return nil, uuid.Nil, err
	}
	page = make([]Transfer, 0, min(len(rows), limit))
	for i, r := range rows {
		if i == limit {
			next = page[limit-1].ID
			break
		}
		page = append(page, transferFromRow(r))
	}
	return page, next, nil
}
