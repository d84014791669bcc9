// Package db owns everything between Go and PostgreSQL: the embedded,
// versioned migrations of each role database, the Store type that owns
// transactions (with bounded retry on serialization failures and deadlocks),
// connection-pool construction and the mapping of database errors to
// apperr codes.
//
// Each registry has separate databases per role (SPEC §3): <registry>_registry,
// <registry>_teg, and per frame <frame>_eventstore. Every role database gets
// the "common" migrations (outbox and idempotency tables, versions below 100)
// followed by its role's own migrations (versions 100 and up), applied as one
// ordered goose sequence. sqlc reads the same files as its schema and
// generates one package per role (see sqlc.yaml), each under internal/ of
// the store owning that database: internal/commondb here (outbox,
// idempotency, emission policy: OutboxWriter, OutboxStore,
// IdempotencyStore, Policy, PolicyStore), ledgerstore/internal/tegdb,
// registrystore/internal/registrydb and ingest/internal/eventdb. The
// compiler thus keeps generated code behind hand-written stores, and every transaction runs through Store.
package db
