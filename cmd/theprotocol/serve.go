package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/theprotocol-dev/theprotocol/config"
)

// runServe runs nodes of the topology against external services (the
// production shape: Postgres, Temporal and Kafka are given by flags or
// environment). -registries picks which nodes this process hosts.
//
// The nodes' SPIFFE identities come from the SPIRE Workload API when
// SPIFFE_ENDPOINT_SOCKET (or -identity=spire) is set; the on-disk dev CA
// only with -identity=devca. With neither, serve refuses to start: a
// production node silently minting its own CA would be trusted by nobody
// and trust anything signed by a key lying in its data directory.
func runServe(ctx context.Context, args []string) error {
	var only string
	cfg, _, err := parseFlags("serve", args, func(fs *flag.FlagSet) {
		fs.StringVar(&only, "registries", config.Env("THEPROTOCOL_REGISTRIES", ""), "comma-separated registry IDs to host (default: all; env THEPROTOCOL_REGISTRIES)")
	})
	if err != nil {
		return err
	}
	source, err := cfg.Deploy.Identity.Resolve(false)
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
	if err := errors.Join(svc.secureTemporal(cfg), svc.secureKafka(cfg)); err != nil {
		return err
	}
	svc.useIdentity(cfg, source)
	if source == config.IdentityDevCA {
		log.Warn("identity from the on-disk dev CA (-identity=devca): not for production")
	}
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
