package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/api/disputeapi"
)

func init() {
	const v1, tag = "/api/v1", "disputes"
	Register(
		Operation{Method: http.MethodPost, Path: v1 + "/disputes", ID: "openDispute", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Open a dispute about a transfer", Request: disputeapi.OpenRequest{}, Status: 201, Response: disputeapi.DisputeResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/disputes/{id}/response", ID: "respondDispute", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "The respondent answers a dispute", Request: disputeapi.ResponseRequest{}, Response: disputeapi.DisputeResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/admin/disputes/{id}/ruling", ID: "ruleDispute", Tag: "admin", Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Rule a dispute (admin)", Request: disputeapi.RulingRequest{}, Response: disputeapi.DisputeResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/disputes", ID: "listDisputes", Tag: tag, Auth: AuthBearer,
			Query:   map[string]string{"agent": "whose disputes (admins; default the caller)", "after": "cursor", "limit": "page size"},
			Summary: "The caller's disputes"},
		Operation{Method: http.MethodGet, Path: v1 + "/disputes/{id}", ID: "getDispute", Tag: tag, Auth: AuthBearer,
			Summary: "A dispute", Response: disputeapi.DisputeResponse{}},
	)
}
