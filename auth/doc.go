// Package auth issues and verifies the registry's credentials:
//
//   - high-entropy random secrets (developer API keys, agent and admin client
//     secrets, bootstrap tokens), generated here, shown to their owner once
//     and stored only as a SHA-256 hash, compared in constant time;
//   - short-lived bearer tokens: compact JWS (JWT) signed with the registry's
//     Ed25519 key ("alg":"EdDSA", "kid" = a hash of the public key), with the
//     claims in registry.Claims;
//   - the Gin middleware that authenticates a request's bearer token,
//     checks it against current state (revocation, credential rotation) and
//     calls api.SetPrincipal;
//   - an in-memory GCRA rate limiter for the authentication endpoints.
//
// The design and its reasoning are in registry/README.md. Nothing in this
// package logs, and no error message it produces contains a secret.
package auth
