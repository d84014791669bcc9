package main

import (
	"context"
	"fmt"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
)

// runMigrate creates (if needed) and migrates every role database of the
// topology on -postgres-url. Nodes also migrate at start-up; this command is
// for deployments that migrate before rolling out.
func runMigrate(ctx context.Context, args []string) error {
	cfg, _, err := parseFlags("migrate", args, nil)
	if err != nil {
		return err
	}
	if cfg.PostgresURL == "" {
		return fmt.Errorf("migrate needs -postgres-url (or THEPROTOCOL_POSTGRES_URL); `theprotocol dev` migrates its embedded cluster itself")
	}
	log := newLogger(cfg)
	topo, err := config.LoadTopology(cfg.TopologyFile)
	if err != nil {
		return err
	}
	type target struct {
		name string
		role db.Role
	}
	var targets []target
	for _, f := range topo.Frames {
		for _, r := range f.Registries {
			if r.HasRole(config.RoleRegistry) {
				targets = append(targets, target{r.DBName(config.RoleRegistry), db.RoleRegistry})
			}
			if r.HasRole(config.RoleTEG) {
				targets = append(targets, target{r.DBName(config.RoleTEG), db.RoleTEG})
			}
			if r.HasRole(config.RoleEventStore) {
				targets = append(targets, target{f.EventStoreDBName(), db.RoleEventStore})
			}
		}
	}
	for _, t := range targets {
		if err := db.EnsureDatabase(ctx, cfg.PostgresURL, t.name); err != nil {
			return err
		}
		dsn, err := db.WithDatabase(cfg.PostgresURL, t.name)
		if err != nil {
			return err
		}
		pool, err := db.Open(ctx, dsn, db.PoolOptions{MaxConns: 2})
		if err != nil {
			return err
		}
		v, err := db.Migrate(ctx, pool, t.role, log)
		pool.Close()
		if err != nil {
			return err
		}
		fmt.Printf("%-28s %-10s version %d\n", t.name, t.role, v)
	}
	return nil
}
