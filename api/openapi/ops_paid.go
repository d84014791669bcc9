package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/api/paidapi"
)

func init() {
	const v1, tag = "/api/v1", "payments"
	Register(
		Operation{Method: http.MethodPost, Path: v1 + "/payments/tokens", ID: "issuePaymentToken", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Reserve up to a maximum for a payee and get a signed payment token", Request: paidapi.TokenRequest{}, Status: 201, Response: paidapi.TokenResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/payments/settle", ID: "settlePayment", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "The payee settles a payment token for the amount due (once)", Request: paidapi.SettleRequest{}, Response: paidapi.SettleResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/payments/release", ID: "releasePayment", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Release a payment token's reservation (payee or payer)", Request: paidapi.ReleaseRequest{}, Response: paidapi.ReleaseResponse{}},
	)
}
