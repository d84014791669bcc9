package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
)

// -roles narrows the one registry serve runs; with several (or dev's
// all), it is refused rather than applied to each.
func TestHostedRegistry(t *testing.T) {
	r := config.Registry{ID: "r1", Roles: []string{config.RoleRegistry, config.RoleTEG, config.RoleEventStore, config.RoleWorker}}
	var cfg config.Config
	got, err := hostedRegistry(cfg, r, nil)
	require.NoError(t, err)
	require.Equal(t, r, got)

	cfg.Split.Roles = []string{config.RoleEventStore}
	got, err = hostedRegistry(cfg, r, map[string]bool{"r1": true})
	require.NoError(t, err)
	require.Equal(t, []string{config.RoleEventStore}, got.Roles)
	_, err = hostedRegistry(cfg, r, nil)
	require.ErrorContains(t, err, "-registries")
	_, err = hostedRegistry(cfg, r, map[string]bool{"r1": true, "r2": true})
	require.ErrorContains(t, err, "-registries")
}
