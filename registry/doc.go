// Package registry is the identity domain of a registry node (SPEC §7):
// DIDs, agent cards and their validation, token claims and scopes,
// the domain records (developers, agents, organisations, bootstrap tokens)
// and the event types the registry authors. Creating an identity also
// reaches the TEG (its account, an agent's reputation bond): that saga is
// in package onboarding. The maturity rule of the bond is here
// (DecideBond).
//
// It is pure Go with no I/O: storage lives in db/registrystore, token
// signing in auth, HTTP in api/registryapi. Every limit on caller input is a
// named constant here, so the API, the store and the tests agree on it.
package registry
