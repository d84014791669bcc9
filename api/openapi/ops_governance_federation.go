package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
)

func init() {
	const v1, tag = "/api/v1", "governance"
	Register(
		Operation{Method: http.MethodPost, Path: v1 + "/governance/federation/propose", ID: "elevateProposal", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Elevate a passed local proposal to every federated registry", Request: ledgerapi.ElevateRequest{}, Status: 201,
			Response: ledgerapi.FederationProposalResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/governance/federation/proposals/{id}", ID: "getFederationProposal", Tag: tag, Auth: AuthBearer,
			Summary:  "A federation proposal as this registry holds it (at its origin: peers, signed tallies, missing registries)",
			Response: ledgerapi.FederationProposalResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/governance/federation/proposals/{id}/vote", ID: "federationVote", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Vote on a federation proposal with this registry's local power", Request: ledgerapi.VoteRequest{}, Response: ledgerapi.VoteResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/governance/federation/proposals/{id}/veto", ID: "vetoFederationProposal", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Veto a passed federation proposal at its origin (mainframe operator)", Request: ledgerapi.VetoRequest{},
			Response: ledgerapi.FederationProposalResponse{}},
	)
}
