package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/gctune"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/worker"
)

// services are the addresses of the shared infrastructure nodes use.
type services struct {
	PostgresAdminURL string
	PostgresAddr     string
	TemporalAddr     string
	TemporalUI       string
	KafkaBrokers     []string
	// How to reach external services securely (config.DeploySettings):
	// zero for the embedded ones.
	TemporalConn  client.ConnectionOptions
	TemporalCreds client.Credentials
	KafkaOpts     []kgo.Opt
	// Identity is the nodes' resolved SVID source and SPIFFESocket the
	// SPIRE Workload API address (config.IdentitySettings).
	Identity          string
	SPIFFESocket      string
	SPIREStartTimeout time.Duration
}

// secureTemporal fills in the Temporal client's TLS and credentials.
func (svc *services) secureTemporal(cfg config.Config) error {
	var err error
	svc.TemporalConn, svc.TemporalCreds, err = cfg.Deploy.Temporal.Connection()
	return err
}

// secureKafka fills in the Kafka clients' TLS and SASL options.
func (svc *services) secureKafka(cfg config.Config) error {
	var err error
	svc.KafkaOpts, err = cfg.Deploy.Kafka.ClientOpts()
	return err
}

// useIdentity records the identity source (resolved by the command).
func (svc *services) useIdentity(cfg config.Config, source string) {
	svc.Identity = source
	svc.SPIFFESocket = cfg.Deploy.Identity.SPIFFEEndpointSocket
	svc.SPIREStartTimeout = cfg.Deploy.Identity.SPIREStartTimeout
}

// prepareExternal makes sure namespaces/search attributes and topics exist
// on services the stack did not start itself (idempotent).
func prepareExternal(ctx context.Context, topo config.Topology, svc services, log *slog.Logger) error {
	for _, ns := range topo.Namespaces() {
		temporal := client.Options{HostPort: svc.TemporalAddr, ConnectionOptions: svc.TemporalConn, Credentials: svc.TemporalCreds}
		if err := worker.EnsureNamespaceWith(ctx, temporal, ns); err != nil {
			return err
		}
	}
	return node.EnsureTopics(ctx, svc.KafkaBrokers, topo.Topics(), log, svc.KafkaOpts...)
}

// startNodes starts one node per registry of topo (or only those named in
// only), in topology order.
func startNodes(ctx context.Context, cfg config.Config, topo config.Topology, svc services, only map[string]bool, writeAdmin bool, log *slog.Logger) ([]*node.Node, error) {
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	// Process-wide: this process serves the nodes' hot paths (ledger
	// batches, EventStore ingest), whose garbage dominates its allocation.
	gctune.Tune(log)
	var nodes []*node.Node
	for _, f := range topo.Frames {
		// The frame's EventStore lives on its mainframe node; relays of the
		// other nodes ask it how far it got.
		mf := f.Mainframe()
		esHost := cfg.ListenHost
		if cfg.Deploy.PeersByName {
			esHost = mf.ID
		}
		esURL := fmt.Sprintf("http://%s", net.JoinHostPort(esHost, strconv.Itoa(mf.APIPort)))
		esFixed := cfg.Split.EventStoreURL != "" && len(cfg.Split.Roles) > 0
		if esFixed {
			esURL = cfg.Split.EventStoreURL
		}
		for _, r := range f.Registries {
			if len(only) > 0 && !only[r.ID] {
				continue
			}
			if r, err = hostedRegistry(cfg, r, only); err != nil {
				stopNodes(nodes, cfg.ShutdownTimeout)
				return nil, err
			}
			n, err := node.Start(ctx, node.Options{
				Frame: f, Registry: r,
				PostgresAdminURL:      svc.PostgresAdminURL,
				TemporalAddr:          svc.TemporalAddr,
				KafkaBrokers:          svc.KafkaBrokers,
				ListenHost:            cfg.ListenHost,
				MaxBodyBytes:          cfg.MaxBodyBytes,
				DataDir:               dataDir,
				EventStoreURL:         esURL,
				PeerHostsByName:       cfg.Deploy.PeersByName,
				WriteAdminCredentials: writeAdmin,
				Log:                   log,
				BondSettings:          cfg.Bond,
				XferSettings:          cfg.Xfer,
				RegistrySettings:      cfg.RegistryAPI,
				PeerSettings:          cfg.Peers,
				DisputeSettings:       cfg.Dispute,
				GovernanceSettings:    cfg.Governance,
				DiscoverySettings:     cfg.Discovery,
				Identity:              svc.Identity,
				SPIFFEEndpointSocket:  svc.SPIFFESocket,
				SPIREStartTimeout:     svc.SPIREStartTimeout,
				TemporalConnection:    svc.TemporalConn,
				TemporalCredentials:   svc.TemporalCreds,
				KafkaOpts:             svc.KafkaOpts,
				TrustedProxies:        cfg.Deploy.TrustedProxyList(),
				ReconSettings:         cfg.Recon,
				ReputationSettings:    cfg.Reputation,
				BridgeSettings:        cfg.Bridge,
				EventAuth:             cfg.EventAuth,
				FederationSync:        cfg.FedSync,
				Split:                 cfg.Split,
				DeferFederation:       true,
			})
			if err != nil {
				stopNodes(nodes, cfg.ShutdownTimeout)
				return nil, fmt.Errorf("start node %s: %w", r.ID, err)
			}
			nodes = append(nodes, n)
			if r.Mainframe && !esFixed {
				esURL = n.URL()
			}
		}
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("no registry of the topology matched")
	}
	for _, n := range nodes {
		n.StartFederation(ctx)
	}
	if err := bridgeFrames(ctx, nodes); err != nil {
		stopNodes(nodes, cfg.ShutdownTimeout)
		return nil, err
	}
	return nodes, nil
}

func stopNodes(nodes []*node.Node, budget time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	for i := len(nodes) - 1; i >= 0; i-- {
		nodes[i].Stop(ctx)
	}
}

// Endpoints is .data/endpoints.json: every address of the running stack,
// for tools and tests.
type Endpoints struct {
	StartedAt time.Time       `json:"started_at"`
	PID       int             `json:"pid"`
	Nodes     []EndpointsNode `json:"nodes"`
	Temporal  struct {
		Address    string   `json:"address"`
		UIURL      string   `json:"ui_url"`
		Namespaces []string `json:"namespaces"`
	} `json:"temporal"`
	Kafka struct {
		Brokers []string `json:"brokers"`
		Topics  []string `json:"topics"`
	} `json:"kafka"`
	Postgres struct {
		Address  string `json:"address"`
		AdminURL string `json:"admin_url"`
	} `json:"postgres"`
	// ControlURL is `dev`'s fault-injection endpoint (devcontrol.go).
	ControlURL string `json:"control_url,omitempty"`
}

// EndpointsNode describes one node.
type EndpointsNode struct {
	Frame       string            `json:"frame"`
	Registry    string            `json:"registry"`
	Mainframe   bool              `json:"mainframe"`
	Roles       []string          `json:"roles"`
	APIURL      string            `json:"api_url"`
	MTLSURL     string            `json:"mtls_url"` // inter-service listener (SPIFFE mTLS: dev CA or SPIRE)
	SPIFFEID    string            `json:"spiffe_id"`
	BundleURL   string            `json:"bundle_url"` // SPIFFE bundle endpoint (https_spiffe)
	MetricsURL  string            `json:"metrics_url"`
	HealthURL   string            `json:"health_url"`
	ReadyURL    string            `json:"ready_url"`
	Namespace   string            `json:"temporal_namespace"`
	TaskQueue   string            `json:"task_queue"`
	Databases   map[string]string `json:"databases"`
	KafkaTopic  string            `json:"kafka_topic"`
	TrustDomain string            `json:"trust_domain"`
	// AdminCredentials is the dev admin client's file (0600), when written.
	AdminCredentials string `json:"admin_credentials_file,omitempty"`
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func buildEndpoints(topo config.Topology, nodes []*node.Node, svc services, dataDir string) Endpoints {
	var ep Endpoints
	ep.StartedAt = time.Now().UTC()
	ep.PID = os.Getpid()
	i := 0
	for _, f := range topo.Frames {
		for _, r := range f.Registries {
			if i >= len(nodes) {
				break
			}
			n := nodes[i]
			i++
			dbs := map[string]string{}
			for role, name := range n.DBNames {
				dbs[string(role)] = name
			}
			ep.Nodes = append(ep.Nodes, EndpointsNode{
				Frame: f.ID, Registry: r.ID, Mainframe: r.Mainframe, Roles: r.Roles,
				APIURL: n.URL(), MTLSURL: n.MTLSURL(), SPIFFEID: n.SPIFFEID, BundleURL: n.BundleURL(), MetricsURL: n.URL() + "/metrics", HealthURL: n.URL() + "/healthz", ReadyURL: n.URL() + "/readyz",
				Namespace: r.TemporalNamespace(), TaskQueue: r.TaskQueue(), Databases: dbs,
				KafkaTopic: f.Topic(), TrustDomain: f.TrustDomain,
			})
			if r.HasRole(config.RoleRegistry) {
				if p := node.AdminCredentialsFile(dataDir, r.ID); fileExists(p) {
					ep.Nodes[len(ep.Nodes)-1].AdminCredentials = p
				}
			}
		}
	}
	ep.Temporal.Address = svc.TemporalAddr
	ep.Temporal.UIURL = svc.TemporalUI
	ep.Temporal.Namespaces = topo.Namespaces()
	ep.Kafka.Brokers = svc.KafkaBrokers
	ep.Kafka.Topics = topo.Topics()
	ep.Postgres.Address = svc.PostgresAddr
	ep.Postgres.AdminURL = svc.PostgresAdminURL
	return ep
}

// writeJSONAtomic writes v to path via a temp file and rename, so readers
// never see a half-written file.
func writeJSONAtomic(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func printEndpoints(ep Endpoints) {
	fmt.Println()
	fmt.Println("TheProtocol dev stack is up")
	for _, n := range ep.Nodes {
		fmt.Printf("  %-11s frame %-6s API %s  ready %s  metrics %s\n", n.Registry, n.Frame, n.APIURL, n.ReadyURL, n.MetricsURL)
	}
	if ep.Temporal.UIURL != "" {
		fmt.Printf("  Temporal UI  %s   (gRPC %s, namespaces %v)\n", ep.Temporal.UIURL, ep.Temporal.Address, ep.Temporal.Namespaces)
	} else {
		fmt.Printf("  Temporal     %s   (namespaces %v)\n", ep.Temporal.Address, ep.Temporal.Namespaces)
	}
	fmt.Printf("  Kafka        %v   (topics %v)\n", ep.Kafka.Brokers, ep.Kafka.Topics)
	fmt.Printf("  Postgres     %s\n", ep.Postgres.Address)
	for _, n := range ep.Nodes {
		if n.AdminCredentials != "" {
			fmt.Printf("  admin client of %-11s %s\n", n.Registry, n.AdminCredentials)
		}
	}
	fmt.Println("Press Ctrl-C to stop everything.")
}
