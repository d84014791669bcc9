// Package ledgerstore is the TEG ledger on PostgreSQL: accounts, balances
// per (account, bucket), balanced journal entries, transfers with fees,
// two-phase holds, mint/burn/treasury grants and their outbox events. It is
// the hand-written store over its sqlc package internal/tegdb: no
// caller sees pgx or sqlc types, and every expected failure is an
// *apperr.Error (Invalid, NotFound, Forbidden, Conflict, IdempotencyReuse,
// InsufficientFunds, FailedPrecondition, Unavailable).
//
// # Transactions
//
// Every method that changes money runs exactly one database transaction (via
// db.Store, which retries whole transactions on serialization failures and
// deadlocks) containing the balance updates, the journal entry whose postings
// sum to zero, the business record (transfer, hold, supply operation) and the
// outbox events. Either all of it commits or none of it. An intra-registry
// transfer (or hold post) written by the group-commit path is its own journal
// entry: its row determines the postings exactly, and ledger_journal (the
// complete journal: stored entries plus one derived entry per such transfer)
// is what audits read (migration teg/00111).
//
// # Invariants the database enforces
//
//   - balances_nonnegative: no bucket of any account except issuance goes
//     below zero, and active holds never exceed the liquid balance;
//   - journal_entries_balanced: every stored journal entry's deltas are
//     non-zero and sum to exactly zero; a transfer row's derived entry
//     (sender −amount, receiver +(amount − fee), fee_collector +fee) is by
//     the transfers CHECKs (amount > 0, 0 ≤ fee < amount, sender ≠ receiver);
//   - unique business keys: (sender, client_key) for transfers, (account,
//     client_key) for holds, (kind, actor, client_key) for supply operations,
//     and the outbox's unique idempotency_key per event.
//
// # Lock order (no deadlocks)
//
// A transaction locks, in this order: hold rows (when it works on holds),
// then balance rows in (account_id, bucket) byte order — always through
// lockBalances, which sorts the keys in Go and locks them one primary-key
// probe at a time in that order (BalancesLockInOrder) — and finally, last of all, the
// fee_collector balance, which is never locked up front: it is only touched
// by the final netted UPDATE of a transaction. Every transaction follows the
// same total order, so lock waits can never form a cycle.
//
// # The hot fee_collector row
//
// Every transfer credits fee_collector. Crediting it once per transfer would
// serialise the whole ledger on that row's lock through each commit's fsync
// (the measured probe: 3,300/s → 860/s). The store instead ACCUMULATES fee
// credits per transaction: a group-commit batch of up to 256 transfers
// applies one netted UPDATE to fee_collector for the whole batch, so the row
// is locked once per batch, at the very end, for the duration of one commit.
// (Sharding the account was the alternative; netting keeps a single
// fee_collector row that the EventStore and auditors can read directly.)
//
// # Group commit
//
// GroupCommitter batches concurrently arriving transfers into one
// transaction (≤ 256 by default). A batch is first tried OPTIMISTICALLY:
//
//  1. look up replays of the batch's business keys (one index probe each);
//  2. read the involved balances WITHOUT locks, and the fee velocity counts;
//  3. decide every transfer in Go in arrival order against the running
//     balances — an insufficient-funds transfer is rejected alone, the others
//     go on;
//  4. write the accepted transfers' rows (each its own journal entry) with
//     one unnest statement and their outbox events by COPY (the expensive
//     part, done while holding no balance lock, so concurrent batches
//     overlap);
//  5. lock the touched balances FOR UPDATE in the global order and
//     revalidate: the same sequence of decisions must still be valid from
//     the locked values (each account's lowest running available balance,
//     shifted by how much it moved since step 2, is still ≥ 0) and each
//     pair's velocity count is its step-2 count plus the batch's own
//     transfers (another batch of the pair committed in between otherwise);
//  6. apply the netted balance deltas in one UPDATE (fee_collector last)
//     and commit.
//
// If step 5 fails (balances moved underneath), the transaction is rolled
// back and the batch rerun PESSIMISTICALLY: locks first, then decide, then
// write. If a batch transaction fails as a whole (e.g. a concurrent
// duplicate key), each transfer is retried in a transaction of its own, so
// one bad transfer never fails its neighbours. Store.Transfer (no group
// commit) runs the same code with a batch of one.
//
// One rare interleaving can deadlock — a pessimistic rerun holding balance
// locks while waiting on a concurrent optimistic batch's uncommitted
// duplicate of the same business key — and Postgres breaks it; db.Store
// retries the aborted transaction.
//
// # Balance checkpoints
//
// WriteCheckpoint states the ledger's balances as of an exact outbox
// sequence number (the EventStore reconciles its projection with it; see
// db.OutboxWriter.WriteCut for why the cut is exact). It reads in a
// repeatable-read snapshot and locks only the relay's numbering row, never
// a balance: the group commit does not wait for it.
package ledgerstore
