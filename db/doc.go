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
// generates one package per role under db/ (see sqlc.yaml); generated code
// stays behind hand-written stores (STYLE habit 7).
package db
