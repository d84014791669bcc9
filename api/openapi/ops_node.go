package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/ingest"
)

// Node is GET /api/v1/node (mirrors node.NodeInfo; package node imports
// this one).
type Node struct {
	Frame       string   `json:"frame"`
	Registry    string   `json:"registry"`
	Mainframe   bool     `json:"mainframe"`
	TrustDomain string   `json:"trust_domain"`
	Currency    string   `json:"currency"`
	Roles       []string `json:"roles"`
	Version     string   `json:"version"`
}

func init() {
	const v1 = "/api/v1"
	Register(
		Operation{Method: http.MethodGet, Path: "/healthz", ID: "healthz", Tag: "ops", Summary: "Liveness"},
		Operation{Method: http.MethodGet, Path: "/readyz", ID: "readyz", Tag: "ops", Summary: "Readiness of Postgres, Temporal and Kafka"},
		Operation{Method: http.MethodGet, Path: "/metrics", ID: "metrics", Tag: "ops", Summary: "Prometheus metrics", Text: true},
		Operation{Method: http.MethodGet, Path: v1 + "/node", ID: "getNode", Tag: "ops", Summary: "Who this node is", Response: Node{}},
		Operation{Method: http.MethodGet, Path: v1 + "/openapi.json", ID: "getOpenAPI", Tag: "ops", Summary: "This document"},
		Operation{Method: http.MethodGet, Path: v1 + "/projections/supply-audit", ID: "supplyAudit", Tag: "eventstore",
			Summary: "The frame's supply audit with every term (delta must be 0)", Response: ingest.AuditReport{}},
		Operation{Method: http.MethodGet, Path: v1 + "/projections/reconciliation", ID: "reconciliation", Tag: "eventstore",
			Summary: "Checkpoint and transit reconciliation per registry", Response: ingest.ReconciliationReport{}},
		Operation{Method: http.MethodGet, Path: v1 + "/projections/sources", ID: "eventSources", Tag: "eventstore",
			Summary: "Ingest progress per event source"},
		Operation{Method: http.MethodGet, Path: v1 + "/admin/projections/balances", ID: "projectedBalances", Tag: "admin", Auth: AuthBearer,
			Query: map[string]string{"account": "the account"}, Summary: "An account's projected balances (admin)"},
		Operation{Method: http.MethodGet, Path: v1 + "/admin/emission-policy", ID: "listEmissionPolicy", Tag: "admin", Auth: AuthBearer,
			Summary: "Which source may emit each event type (admin)"},
		Operation{Method: http.MethodPut, Path: v1 + "/admin/emission-policy/{type}", ID: "putEmissionPolicy", Tag: "admin", Auth: AuthBearer, Idem: IdemOptional,
			Summary: "Change one event type's emission rule (admin; itself an event)"},
	)
}
