package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/api/sagaapi"
)

func init() {
	const v1, tag = "/api/v1", "ledger"
	Register(
		Operation{Method: http.MethodPost, Path: v1 + "/transfers", ID: "createTransfer", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Transfer to an agent here or on a peer registry (routed by the receiver's home); to a DID of another frame, a bridge send answered 202 as by POST /bridge/transfers", Request: ledgerapi.TransferRequest{}, Status: 201, Response: ledgerapi.TransferResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/transfers", ID: "listTransfers", Tag: tag, Auth: AuthBearer,
			Query:   map[string]string{"account": "whose transfers (default: the caller)", "limit": "page size", "cursor": "from the previous page"},
			Summary: "An account's transfers, newest first", Response: ledgerapi.TransferPage{}},
		Operation{Method: http.MethodGet, Path: v1 + "/transfers/{id}", ID: "getTransfer", Tag: tag, Auth: AuthBearer,
			Summary: "A transfer (or a cross-registry transfer with its status, or a bridge send made through POST /transfers)"},
		Operation{Method: http.MethodGet, Path: v1 + "/agents/{did}/balance", ID: "getBalance", Tag: tag, Auth: AuthBearer,
			Summary: "Balances per bucket and the available amount", Response: ledgerapi.BalanceResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/holds", ID: "createHold", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Reserve funds for a receiver", Request: ledgerapi.HoldRequest{}, Status: 201, Response: ledgerapi.HoldResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/holds/{id}", ID: "getHold", Tag: tag, Auth: AuthBearer,
			Summary: "A hold", Response: ledgerapi.HoldResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/holds/{id}/post", ID: "postHold", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Post a hold (all or part)", Request: ledgerapi.PostHoldRequest{}, Response: ledgerapi.PostHoldResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/holds/{id}/void", ID: "voidHold", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Void a hold", Response: ledgerapi.HoldResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/admin/mint", ID: "mint", Tag: "admin", Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Mint to the treasury (mainframe, blocked while the audit delta is non-zero)", Request: ledgerapi.MintRequest{}, Status: 201, Response: ledgerapi.SupplyOperationResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/admin/burn", ID: "burn", Tag: "admin", Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Burn from the treasury", Request: ledgerapi.MintRequest{}, Status: 201, Response: ledgerapi.SupplyOperationResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/admin/grants", ID: "grant", Tag: "admin", Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Grant from the treasury to an account", Request: ledgerapi.GrantRequest{}, Status: 201, Response: ledgerapi.SupplyOperationResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/admin/checkpoints", ID: "writeCheckpoint", Tag: "admin", Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Write a balance checkpoint now", Status: 201, Response: ledgerapi.CheckpointResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/admin/sagas", ID: "listSagas", Tag: "admin", Auth: AuthBearer,
			Query:   map[string]string{"state": "saga state", "page_token": "from the previous page"},
			Summary: "Settlement sagas by state", Response: sagaapi.SagaPage{}},
		Operation{Method: http.MethodPost, Path: v1 + "/admin/sagas/{id}/replay", ID: "replaySaga", Tag: "admin", Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Signal a parked saga to retry", Response: sagaapi.ReplayResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/admin/transfers/{id}", ID: "getTransferSaga", Tag: "admin", Auth: AuthBearer,
			Summary: "A cross-registry transfer and its settlement", Response: sagaapi.TransferSaga{}},
	)
}
