package main

import (
	"fmt"

	"github.com/theprotocol-dev/theprotocol/config"
)

// hostedRegistry is r as this process hosts it: with -roles, only those
// roles of the one registry -registries names (the registry's other roles
// run in other processes, reached through -teg-mtls-url,
// -registry-mtls-url and -eventstore-url; docs/adr/0035).
func hostedRegistry(cfg config.Config, r config.Registry, only map[string]bool) (config.Registry, error) {
	if len(cfg.Split.Roles) == 0 {
		return r, nil
	}
	if len(only) != 1 || !only[r.ID] {
		return config.Registry{}, fmt.Errorf("-roles (env THEPROTOCOL_ROLES) splits one registry: name exactly that one with -registries")
	}
	return cfg.Split.Host(r)
}
