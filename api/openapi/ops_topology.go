package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/federation"
)

func init() {
	const v1 = "/api/v1"
	Register(
		Operation{Method: http.MethodGet, Path: v1 + "/federation/topology", ID: "federationTopology", Tag: "federation",
			Summary: "The trusted set: this registry's peers and the registries reached through their signed peer listings, each with its chain", Response: federation.Topology{}},
		Operation{Method: http.MethodPost, Path: v1 + "/admin/federation/topology/discover", ID: "discoverFederationTopology", Tag: "admin", Auth: AuthBearer, Idem: IdemOptional,
			Summary: "Walk the federation graph now and return the trusted set (admin)", Response: federation.Topology{}},
	)
}
