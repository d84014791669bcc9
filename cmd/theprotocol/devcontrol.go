package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/devstack"
	"github.com/theprotocol-dev/theprotocol/node"
)

// devControl is the dev stack's fault-injection endpoint (ADR 0025): a
// plain-HTTP listener on the loopback address, written to endpoints.json
// as control_url, through which `theprotocol sim -chaos` restarts a node
// and stops the embedded Kafka or Postgres for a while. It owns the
// services and nodes it can restart, so the stack's shutdown stops the
// current ones. It exists only in `dev`: `serve` has none.
type devControl struct {
	ctx  context.Context // the stack's: restarted services live as long as it
	cfg  config.Config
	topo config.Topology
	log  *slog.Logger

	mu        sync.Mutex // one fault at a time; guards everything below
	svc       services
	nodes     []*node.Node
	pg        *devstack.Postgres // nil when Postgres is external
	pgOpts    devstack.PostgresOptions
	kafka     *devstack.Kafka // nil when Kafka is external
	kafkaOpts devstack.KafkaOptions
	dataDir   string
	epPath    string
	ep        Endpoints
	srv       *http.Server
	url       string
}

// maxFault bounds how long a service may be kept down on request.
const maxFault = time.Minute

// setPostgres records the embedded cluster; restarts reuse its port.
func (c *devControl) setPostgres(pg *devstack.Postgres, opts devstack.PostgresOptions) {
	if pg == nil {
		return
	}
	if _, port, err := net.SplitHostPort(pg.Addr()); err == nil {
		opts.Port, _ = strconv.Atoi(port)
	}
	c.pg, c.pgOpts = pg, opts
}

// setKafka records the embedded broker; restarts reuse its port.
func (c *devControl) setKafka(k *devstack.Kafka, opts devstack.KafkaOptions) {
	if _, port, err := net.SplitHostPort(k.Addr()); err == nil {
		opts.Port, _ = strconv.Atoi(port)
	}
	c.kafka, c.kafkaOpts = k, opts
}

// start listens on host (loopback only) at an OS-chosen port.
func (c *devControl) start(host string) error {
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return fmt.Errorf("dev control listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /chaos/restart-node", c.handle(func(r *http.Request) error { return c.restartNode(r.URL.Query().Get("registry")) }))
	mux.HandleFunc("POST /chaos/stop-kafka", c.handle(func(r *http.Request) error {
		d, err := faultDuration(r)
		if err != nil {
			return err
		}
		return c.stopKafka(d)
	}))
	mux.HandleFunc("POST /chaos/stop-postgres", c.handle(func(r *http.Request) error {
		d, err := faultDuration(r)
		if err != nil {
			return err
		}
		return c.stopPostgres(d)
	}))
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	c.url = "http://" + ln.Addr().String()
	go func() { _ = c.srv.Serve(ln) }()
	return nil
}

func faultDuration(r *http.Request) (time.Duration, error) {
	d, err := time.ParseDuration(r.URL.Query().Get("for"))
	if err != nil || d <= 0 || d > maxFault {
		return 0, errBadRequest{fmt.Sprintf("query parameter for must be a duration in (0, %s]", maxFault)}
	}
	return d, nil
}

type errBadRequest struct{ msg string }

func (e errBadRequest) Error() string { return e.msg }

func (c *devControl) handle(f func(*http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		err := f(r)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			status := http.StatusInternalServerError
			if errors.As(err, new(errBadRequest)) {
				status = http.StatusBadRequest
			}
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"took": time.Since(start).Round(time.Millisecond).String()})
	}
}

// restartNode stops registry's node gracefully and starts it again on the
// same configuration (same ports, so peers and clients find it again).
func (c *devControl) restartNode(registry string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := -1
	for j, ep := range c.ep.Nodes {
		if ep.Registry == registry {
			i = j
		}
	}
	if i < 0 {
		return errBadRequest{fmt.Sprintf("no node of registry %q", registry)}
	}
	c.log.Warn("dev control: restarting node", "registry", registry)
	stopNodes(c.nodes[i:i+1], c.cfg.ShutdownTimeout)
	started, err := startNodes(c.ctx, c.cfg, c.topo, c.svc, map[string]bool{registry: true}, true, c.log)
	if err != nil {
		return fmt.Errorf("restart %s: %w", registry, err)
	}
	c.nodes[i] = started[0]
	go func() {
		if err := <-started[0].Err(); err != nil {
			c.log.Error("restarted node's server stopped", "registry", registry, "err", err)
		}
	}()
	return c.rewriteEndpoints()
}

// stopKafka closes the embedded broker, waits d and starts it again on
// the same port and data directory.
func (c *devControl) stopKafka(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kafka == nil {
		return errBadRequest{"Kafka is external: the dev stack cannot stop it"}
	}
	c.log.Warn("dev control: stopping Kafka", "for", d)
	c.kafka.Stop()
	c.kafka = nil
	time.Sleep(d)
	var err error
	for try := 0; try < 50; try++ { // the port may linger a moment
		var k *devstack.Kafka
		if k, err = devstack.StartKafka(c.kafkaOpts); err == nil {
			c.kafka = k
			c.log.Warn("dev control: Kafka is back")
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("restart Kafka: %w", err)
}

// stopPostgres stops the embedded cluster, waits d and starts it again.
func (c *devControl) stopPostgres(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pg == nil {
		return errBadRequest{"Postgres is external: the dev stack cannot stop it"}
	}
	c.log.Warn("dev control: stopping Postgres", "for", d)
	if err := c.pg.Stop(); err != nil {
		return fmt.Errorf("stop Postgres: %w", err)
	}
	c.pg = nil
	time.Sleep(d)
	pg, err := devstack.StartPostgres(c.ctx, c.pgOpts)
	if err != nil {
		return fmt.Errorf("restart Postgres: %w", err)
	}
	c.pg = pg
	c.log.Warn("dev control: Postgres is back")
	return nil
}

func (c *devControl) rewriteEndpoints() error {
	c.ep = buildEndpoints(c.topo, c.nodes, c.svc, c.dataDir)
	c.ep.ControlURL = c.url
	if c.epPath == "" {
		return nil
	}
	return writeJSONAtomic(c.epPath, c.ep)
}

// shutdown stops the listener, then the current nodes, Kafka and Postgres
// (the stack's cleanups call the parts in reverse order of start).
func (c *devControl) closeListener() {
	if c.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.srv.Shutdown(ctx)
	}
}

func (c *devControl) closeNodes() {
	c.mu.Lock()
	defer c.mu.Unlock()
	stopNodes(c.nodes, c.cfg.ShutdownTimeout)
}

func (c *devControl) closeKafka() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kafka.Stop()
}

func (c *devControl) closePostgres() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pg != nil {
		_ = c.pg.Stop()
	}
}
