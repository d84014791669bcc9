package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/api/federationapi"
	"github.com/theprotocol-dev/theprotocol/federation"
)

// cardList is the body of GET /federation/cards/{did}.
type cardList struct {
	Cards []federation.CardView `json:"cards"`
}

func init() {
	const v1 = "/api/v1"
	Register(
		Operation{Method: http.MethodGet, Path: v1 + "/federation/cards/{did}", ID: "getFederatedCards", Tag: "federation", Auth: AuthBearer,
			Summary: "The live signed agent cards of a DID this registry sees, one per origin registry (more than one: a conflict)", Response: cardList{}},
		Operation{Method: http.MethodPost, Path: v1 + "/admin/federation/peers/{registry}/accept", ID: "acceptFederationPeer", Tag: "admin", Auth: AuthBearer,
			Idem: IdemOptional, Summary: "Accept another registry's pending peering request (admin)", Request: federationapi.DecisionRequest{}, Response: federation.PeerView{}},
	)
}
