package main

import (
	"context"

	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/devstack"
	"github.com/theprotocol-dev/theprotocol/node"
)

// runDev starts the whole system on embedded defaults: a private Postgres
// cluster under <data-dir>/pg, the Temporal dev server (state in
// <data-dir>/temporal.db, Web UI), the kfake broker (state in
// <data-dir>/kafka) and one node per registry of the demo topology. State
// survives restarts. On SIGINT/SIGTERM it stops everything it started, in
// reverse order.
func runDev(ctx context.Context, args []string) error {
	cfg, _, err := parseFlags("dev", args, nil)
	if err != nil {
		return err
	}
	source, err := cfg.Deploy.Identity.Resolve(true)
	if err != nil {
		return err
	}
	// External services get the deployment's TLS and credentials (built
	// before anything starts, so a bad file stops nothing half-way); the
	// embedded ones speak plain on loopback.
	var svc services
	if cfg.TemporalAddr != "" {
		if err := svc.secureTemporal(cfg); err != nil {
			return err
		}
	}
	if len(cfg.KafkaBrokerList()) > 0 {
		if err := svc.secureKafka(cfg); err != nil {
			return err
		}
	}
	svc.useIdentity(cfg, source)
	log := newLogger(cfg)
	topo, err := config.LoadTopology(cfg.TopologyFile)
	if err != nil {
		return err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	start := time.Now()
	// The fault-injection endpoint owns what it can restart (ADR 0025).
	ctl := &devControl{ctx: ctx, cfg: cfg, topo: topo, log: log, dataDir: dataDir}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		log.Info("dev stack stopped")
	}()

	// Postgres and Temporal start in parallel: both take seconds.
	type pgResult struct {
		pg  *devstack.Postgres
		err error
	}
	pgCh := make(chan pgResult, 1)
	pgOpts := devstack.PostgresOptions{
		Dir: filepath.Join(dataDir, "pg"), Host: cfg.ListenHost, Port: cfg.PostgresPort, Install: true, Log: log,
	}
	if cfg.PostgresURL == "" {
		go func() {
			pg, err := devstack.StartPostgres(ctx, pgOpts)
			pgCh <- pgResult{pg, err}
		}()
	} else {
		pgCh <- pgResult{}
	}
	if cfg.TemporalAddr == "" {
		tmp, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
			Bin: cfg.TemporalBin, Host: cfg.ListenHost, Port: cfg.TemporalPort, UIPort: cfg.TemporalUIPort,
			DBFile: filepath.Join(dataDir, "temporal.db"), Namespaces: topo.Namespaces(),
			LogFile: filepath.Join(dataDir, "temporal.log"), Log: log,
		})
		if err != nil {
			if r := <-pgCh; r.pg != nil {
				_ = r.pg.Stop()
			}
			return err
		}
		cleanups = append(cleanups, func() { _ = tmp.Stop() })
		svc.TemporalAddr, svc.TemporalUI = tmp.Addr(), tmp.UIURL()
	} else {
		svc.TemporalAddr = cfg.TemporalAddr
	}
	r := <-pgCh
	if r.err != nil {
		return r.err
	}
	if r.pg != nil {
		ctl.setPostgres(r.pg, pgOpts)
		cleanups = append(cleanups, ctl.closePostgres)
		svc.PostgresAdminURL, svc.PostgresAddr = r.pg.AdminURL(), r.pg.Addr()
	} else {
		svc.PostgresAdminURL, svc.PostgresAddr = cfg.PostgresURL, "external"
	}

	if brokers := cfg.KafkaBrokerList(); len(brokers) > 0 {
		svc.KafkaBrokers = brokers
	} else {
		kOpts := devstack.KafkaOptions{
			Host: cfg.ListenHost, Port: cfg.KafkaPort, DataDir: filepath.Join(dataDir, "kafka"), Topics: topo.Topics(), Log: log,
		}
		k, err := devstack.StartKafka(kOpts)
		if err != nil {
			return err
		}
		ctl.setKafka(k, kOpts)
		cleanups = append(cleanups, ctl.closeKafka)
		svc.KafkaBrokers = []string{k.Addr()}
	}
	// Namespaces, search attributes and topics: created by the embedded
	// services' flags already; ensured here for external ones (idempotent).
	if err := prepareExternal(ctx, topo, svc, log); err != nil {
		return err
	}

	nodes, err := startNodes(ctx, cfg, topo, svc, nil, true, log)
	if err != nil {
		return err
	}
	ctl.svc, ctl.nodes = svc, nodes
	cleanups = append(cleanups, ctl.closeNodes)
	if cfg.Demo.Agents {
		cleanups = append(cleanups, startDemoAgents(ctx, nodes, dataDir, cfg.Demo.Interval, log))
	}
	if err := ctl.start(cfg.ListenHost); err != nil {
		return err
	}
	cleanups = append(cleanups, ctl.closeListener)
	fundOperators(ctx, nodes, log)

	epPath := filepath.Join(dataDir, "endpoints.json")
	ctl.epPath = epPath
	if err := ctl.rewriteEndpoints(); err != nil {
		return fmt.Errorf("write %s: %w", epPath, err)
	}
	ep := ctl.ep
	cleanups = append(cleanups, func() { _ = os.Remove(epPath) })
	printEndpoints(ep)
	log.Info("dev stack ready", "startup", time.Since(start).Round(time.Millisecond), "endpoints", epPath)

	return waitForStop(ctx, nodes)
}

// waitForStop blocks until the context is cancelled (signal) or a node's
// server fails.
func waitForStop(ctx context.Context, nodes []*node.Node) error {
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() {
			if err := <-n.Err(); err != nil {
				errs <- fmt.Errorf("node %s: %w", n.URL(), err)
			}
		}()
	}
	select {
	case <-ctx.Done():
		fmt.Println("\nstopping…")
		return nil
	case err := <-errs:
		return err
	}
}
