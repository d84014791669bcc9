package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
)

func init() {
	const v1, tag = "/api/v1", "staking"
	Register(
		Operation{Method: http.MethodGet, Path: v1 + "/staking/apy-tiers", ID: "apyTiers", Tag: tag,
			Summary: "Current APY per tier", Response: ledgerapi.APYTiersResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/staking/stake", ID: "stake", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Stake", Request: ledgerapi.StakeRequest{}, Status: 201, Response: ledgerapi.PositionResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/staking/positions", ID: "listPositions", Tag: tag, Auth: AuthBearer,
			Summary: "The caller's positions"},
		Operation{Method: http.MethodGet, Path: v1 + "/staking/positions/{id}", ID: "getPosition", Tag: tag, Auth: AuthBearer,
			Summary: "A position", Response: ledgerapi.PositionResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/staking/positions/{id}/unstake", ID: "unstake", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Unstake (flexible: after the cooldown)", Response: ledgerapi.UnstakeResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/staking/positions/{id}/delegate", ID: "delegate", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Delegate a position to a validator", Request: ledgerapi.DelegateRequest{}, Response: ledgerapi.PositionResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/staking/unstake-requests", ID: "listUnstakeRequests", Tag: tag, Auth: AuthBearer,
			Summary: "The caller's pending unstakes"},
		Operation{Method: http.MethodPost, Path: v1 + "/staking/validator", ID: "setValidator", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Offer the caller as a validator", Request: ledgerapi.ValidatorRequest{}, Response: ledgerapi.ValidatorResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/staking/validators", ID: "listValidators", Tag: tag, Auth: AuthBearer,
			Summary: "Validators"},
		Operation{Method: http.MethodGet, Path: v1 + "/staking/rewards", ID: "listRewards", Tag: tag, Auth: AuthBearer,
			Summary: "The caller's rewards"},
		Operation{Method: http.MethodPost, Path: v1 + "/admin/enforcement/agents/{did}/slash-stake", ID: "slashStake", Tag: "admin", Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Force-unstake with a penalty (admin)", Request: ledgerapi.SlashRequest{}, Response: ledgerapi.SlashResponse{}},
	)
}
