package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
)

func init() {
	const v1, tag = "/api/v1", "governance"
	Register(
		Operation{Method: http.MethodGet, Path: v1 + "/governance/lock-options", ID: "governanceLockOptions", Tag: tag,
			Summary: "Lock tiers and their voting-power multipliers", Response: ledgerapi.LockOptionsResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/governance/parameters", ID: "governanceParameters", Tag: tag,
			Summary: "The governed parameters in force", Response: ledgerapi.ParametersResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/governance/power/{did}", ID: "votingPower", Tag: tag, Auth: AuthBearer,
			Summary: "An agent's voting power", Response: ledgerapi.PowerResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/governance/proposals", ID: "propose", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Create a proposal", Request: ledgerapi.ProposalRequest{}, Status: 201, Response: ledgerapi.ProposalResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/governance/proposals", ID: "listProposals", Tag: tag, Auth: AuthBearer,
			Summary: "Proposals", Response: ledgerapi.ProposalsResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/governance/proposals/{id}", ID: "getProposal", Tag: tag, Auth: AuthBearer,
			Summary: "A proposal", Response: ledgerapi.ProposalResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/governance/proposals/{id}/vote", ID: "vote", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Vote on a proposal", Request: ledgerapi.VoteRequest{}, Response: ledgerapi.VoteResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/governance/proposals/{id}/votes/{did}", ID: "getVote", Tag: tag, Auth: AuthBearer,
			Summary: "An agent's vote on a proposal", Response: ledgerapi.VoteResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/governance/delegate", ID: "delegateVotes", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Delegate voting power", Request: ledgerapi.GovDelegateRequest{}, Response: ledgerapi.GovDelegationResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/governance/proposals/{id}/veto", ID: "vetoProposal", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Veto a passed federation proposal (mainframe operator)", Request: ledgerapi.VetoRequest{}, Response: ledgerapi.ProposalResponse{}},
	)
}
