package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/api/svidapi"
)

func init() {
	const v1, tag = "/api/v1", "registry"
	Register(
		Operation{Method: http.MethodPost, Path: v1 + "/agents/{did}/svid", ID: "enrolAgentSVID", Tag: tag, Auth: AuthBearer, Idem: IdemOptional,
			Summary: "The agent itself sends a CSR and gets a short-lived X.509 SVID carrying its DID, with the trust bundle (agent-to-agent mTLS)",
			Request: svidapi.EnrolRequest{}, Status: 201, Response: svidapi.EnrolResponse{}},
	)
}
