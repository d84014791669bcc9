package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/api/federationapi"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/federation"
)

// peerList is the body of GET /federation/peers.
type peerList struct {
	Peers []federation.PeerView `json:"peers"`
}

func init() {
	const v1, tag = "/api/v1", "federation"
	decision := func(verb, id, summary string) Operation {
		return Operation{Method: http.MethodPost, Path: v1 + "/admin/federation/peers/{registry}/" + verb, ID: id, Tag: "admin", Auth: AuthBearer, Idem: IdemOptional,
			Summary: summary, Request: federationapi.DecisionRequest{}, Response: federation.PeerView{}}
	}
	Register(
		Operation{Method: http.MethodGet, Path: v1 + "/federation/peers", ID: "listFederationPeers", Tag: tag,
			Summary: "Every peer registry with its live licence status", Response: peerList{}},
		Operation{Method: http.MethodGet, Path: v1 + "/federation/resolve/{account}", ID: "resolveAccount", Tag: tag, Auth: AuthBearer,
			Summary: "The home registry of a DID or developer wallet (409 when two registries claim it)", Response: federation.Resolution{}},
		Operation{Method: http.MethodPost, Path: v1 + "/admin/federation/allocations", ID: "allocateToOperator", Tag: "admin", Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Fund an operator registry's treasury from the mainframe's (admin, mainframe only)", Request: federationapi.AllocationRequest{}, Status: 202, Response: ledgerapi.XferResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/admin/federation/peers", ID: "addFederationPeer", Tag: "admin", Auth: AuthBearer, Idem: IdemOptional,
			Summary: "License a peer registry by its mTLS base URL (admin)", Request: federationapi.PeerRequest{}, Status: 201, Response: federation.PeerView{}},
		decision("suspend", "suspendFederationPeer", "Suspend a peer's licence (admin; takes effect at once)"),
		decision("reinstate", "reinstateFederationPeer", "Reinstate a suspended peer (admin)"),
		decision("revoke", "revokeFederationPeer", "Revoke a peer's licence for good (admin)"),
	)
}
