package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/theprotocol-dev/theprotocol/config"
)

// runServe runs nodes of the topology against external services (the
// production shape: Postgres, Temporal and Kafka are given by flags or
// environment). -registries picks which nodes this process hosts.
func runServe(ctx context.Context, args []string) error {
	var only string
	cfg, _, err := parseFlags("serve", args, func(fs *flag.FlagSet) {
		fs.StringVar(&only, "registries", config.Env("THEPROTOCOL_REGISTRIES", ""), "comma-separated registry IDs to host (default: all; env THEPROTOCOL_REGISTRIES)")
	})
	if err != nil {
		return err
	}
	if cfg.PostgresURL == "" || cfg.TemporalAddr == "" || cfg.KafkaBrokers == "" {
		return fmt.Errorf("serve needs -postgres-url, -temporal-addr and -kafka-brokers (or their env vars); use `theprotocol dev` for the embedded stack")
	}
	log := newLogger(cfg)
	topo, err := config.LoadTopology(cfg.TopologyFile)
	if err != nil {
		return err
	}
	pick := map[string]bool{}
	for _, id := range strings.Split(only, ",") {
		if id = strings.TrimSpace(id); id != "" {
			pick[id] = true
		}
	}
	svc := services{PostgresAdminURL: cfg.PostgresURL, PostgresAddr: "external", TemporalAddr: cfg.TemporalAddr, KafkaBrokers: cfg.KafkaBrokerList()}
	if err := prepareExternal(ctx, topo, svc, log); err != nil {
		return err
	}
	nodes, err := startNodes(ctx, cfg, topo, svc, pick, false, log)
	if err != nil {
		return err
	}
	defer stopNodes(nodes, cfg.ShutdownTimeout)
	return waitForStop(ctx, nodes)
}
