package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/api/bridgeapi"
	"github.com/theprotocol-dev/theprotocol/api/reputationapi"
)

func init() {
	const v1 = "/api/v1"
	Register(
		Operation{Method: http.MethodPost, Path: v1 + "/bridge/transfers", ID: "bridgeSend", Tag: "bridge", Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Send to another frame (lock here, mint wrapped there)", Request: bridgeapi.Request{}, Status: 202, Response: bridgeapi.TransferDTO{}},
		Operation{Method: http.MethodPost, Path: v1 + "/bridge/redemptions", ID: "bridgeRedeem", Tag: "bridge", Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Redeem wrapped tokens back to their frame", Request: bridgeapi.Request{}, Status: 202, Response: bridgeapi.TransferDTO{}},
		Operation{Method: http.MethodGet, Path: v1 + "/bridge/transfers/{id}", ID: "getBridgeTransfer", Tag: "bridge", Auth: AuthBearer,
			Summary: "A bridge transfer", Response: bridgeapi.TransferDTO{}},
		Operation{Method: http.MethodGet, Path: v1 + "/projections/bridge-reconciliation", ID: "bridgeReconciliation", Tag: "admin", Auth: AuthBearer,
			Summary: "Locked versus wrapped per frame pair (admin)"},
		Operation{Method: http.MethodGet, Path: v1 + "/reputation/{did}/trust-score", ID: "trustScore", Tag: "reputation",
			Summary: "An agent's EigenTrust score", Response: reputationapi.TrustScore{}},
		Operation{Method: http.MethodGet, Path: v1 + "/reputation/runs/{id}", ID: "reputationRun", Tag: "reputation",
			Summary: "A reputation run", Response: reputationapi.Run{}},
		Operation{Method: http.MethodGet, Path: v1 + "/reputation/runs/{id}/graph", ID: "reputationGraph", Tag: "reputation",
			Summary: "A reputation run's trust graph"},
	)
}
