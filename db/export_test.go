package db

// MigrateFS exposes migrateSQL to the external tests (which need testenv,
// and testenv imports this package).
var MigrateFS = migrateSQL

// RegisterUUID exposes registerUUID to the external tests.
var RegisterUUID = registerUUID
