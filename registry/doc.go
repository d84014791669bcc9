// Package registry is the identity domain of a registry node (SPEC §7):
// DIDs, agent cards and their validation, token claims and scopes,
// the domain records (developers, agents, organisations, bootstrap tokens),
// the event types the registry authors, and the ports through which agent
// creation reaches the ledger (Ledger, BondLocker), and the maturity rule
// of the agent's reputation bond (DecideBond).
//
// It is pure Go with no I/O: storage lives in db/registrystore, token
// signing in auth, HTTP in api/registryapi. Every limit on caller input is a
// named constant here, so the API, the store and the tests agree on it.
package registry
