// Package identity is the identity fabric: every inter-service call in
// TheProtocol is mutual TLS with SPIFFE X.509 SVIDs, authorised by SPIFFE ID.
// There are no shared secrets on any path between services.
//
// A component gets a [Source] (its own SVID plus the trust bundles it
// verifies peers with) from one of two providers:
//
//   - [NewDevSource]: a built-in CA per frame (trust domain) persisted under
//     <data-dir>/ca/<trust-domain>/ ([OpenCA]), issuing short-lived SVIDs
//     (spiffe://<td>/registry/<id>, /teg/<id>, /eventstore) and rotating them
//     before expiry. For `make run` and tests.
//   - [NewSPIRESource]: the SPIRE Workload API (SPIFFE_ENDPOINT_SOCKET);
//     rotation and bundle updates are pushed by the agent.
//
// [TLS] turns a Source into server and client *tls.Config values built with
// go-spiffe's tlsconfig.MTLSServerConfig / MTLSClientConfig. Authorizers:
// [AuthorizeID], [AuthorizeMemberOf], [AuthorizePeers] (a live [PeerSet],
// consulted on every handshake, including resumed ones, so removing a peer
// refuses its next call) and [AuthorizeAnyOf].
//
// Federation: [Bundles] is the x509bundle.Source a node verifies with: its
// own trust domain's bundle (from the provider) plus one pinned bundle per
// peer trust domain, fetched from the peer's SPIFFE bundle endpoint
// ([BundleEndpointHandler]) with the https_spiffe or https_web profile and
// refreshed periodically. Removing a peer trust domain drops its bundle at
// once.
//
// Metrics ([Metrics]): SVID expiry, rotations, handshake failures by reason,
// bundle refreshes.
package identity
