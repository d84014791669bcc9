// Package node assembles one registry's process: its role databases
// (created and migrated at start-up), the Gin API with every role's routes,
// readiness checks, metrics, and its Temporal worker. `theprotocol dev` runs
// one Node per registry of the topology in a single process; production runs
// one per process (`theprotocol serve`).
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/bonds"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/disputes"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/federation"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/identity/peerstore"
	"github.com/theprotocol-dev/theprotocol/paidcalls"
	"github.com/theprotocol-dev/theprotocol/payments"
	"github.com/theprotocol-dev/theprotocol/reputation"
	"github.com/theprotocol-dev/theprotocol/worker"
)

// Version is the build's version, set with -ldflags.
var Version = "dev"

// Options are everything a node needs from outside.
type Options struct {
	Frame    config.Frame
	Registry config.Registry
	// PostgresAdminURL points at a cluster where the node may create its
	// databases.
	PostgresAdminURL string
	TemporalAddr     string
	KafkaBrokers     []string
	ListenHost       string
	MaxBodyBytes     int64
	// DataDir holds per-registry files (signing key, dev admin credentials).
	DataDir string
	// EventStoreURL is the API base URL of the node hosting this frame's
	// EventStore (relays read their acknowledged sequence from it); unused
	// when this node hosts it.
	EventStoreURL string
	// PeerHostsByName: the frame's other nodes are reached at a host named
	// after their registry ID (see peerHost), not at ListenHost.
	PeerHostsByName bool
	// WriteAdminCredentials creates an admin client on first start and writes
	// it (0600) to <DataDir>/<registry>/admin-credentials.json (dev only).
	WriteAdminCredentials bool
	Log                   *slog.Logger
	// Now is the node's clock (tests inject one).
	Now func() time.Time
	// The roles' settings, parsed and validated by config (Config.Bond,
	// Config.Xfer, Config.RegistryAPI, Config.Peers). A zero value means
	// the defaults.
	BondSettings     BondSettings
	XferSettings     XferSettings
	RegistrySettings config.RegistrySettings
	PeerSettings     config.PeerSettings
	ReconSettings    ReconSettings
	// DisputeSettings: Config.Dispute (zero: the defaults).
	DisputeSettings config.DisputeSettings
	// GovernanceSettings bound proposals (zero: the defaults).
	GovernanceSettings config.GovernanceSettings
	// DiscoverySettings: the federation graph walk (zero: the defaults).
	DiscoverySettings config.DiscoverySettings

	// ReputationSettings: the reputation runs (config.ReputationSettings).
	ReputationSettings ReputationSettings
	// BridgeSettings tune the cross-frame bridge (zero: the defaults).
	BridgeSettings config.BridgeSettings

	// Production wiring (config.DeploySettings), zero for plain local
	// services. Identity is the mTLS listener's SVID source:
	// config.IdentitySPIRE (the Workload API at SPIFFEEndpointSocket,
	// waiting up to SPIREStartTimeout, default 30s, for the first SVID)
	// or config.IdentityDevCA ("" too: the dev CA under DataDir).
	Identity             string
	SPIFFEEndpointSocket string
	SPIREStartTimeout    time.Duration
	// TemporalConnection and TemporalCredentials secure the Temporal
	// client (config.TemporalClientSettings.Connection).
	TemporalConnection  client.ConnectionOptions
	TemporalCredentials client.Credentials
	// KafkaOpts go to every Kafka client of the node: relays, the
	// EventStore consumer, reactors, topic creation, the readiness probe
	// (config.KafkaSettings.ClientOpts: TLS, SASL).
	KafkaOpts []kgo.Opt
	// TrustedProxies: api.EngineOptions.TrustedProxies.
	TrustedProxies []string

	// EventAuth: the relays' event signing key and the keys the
	// EventStore trusts (Config.EventAuth; zero: required, under DataDir).
	EventAuth config.EventAuthSettings

	// FederationSync tunes the signed card sync and peering requests
	// (zero fields: config.DefaultFederationSyncSettings).
	FederationSync config.FederationSyncSettings
	// DeferFederation holds the federation discovery walk and the card
	// syncs until StartFederation. A process that starts several
	// registries one after another (theprotocol dev) opens them once all
	// listen, so the first walk and pull do not meet a sibling that is not
	// listening yet and log its refusal.
	DeferFederation bool

	// Split: where this registry's other roles run when this process
	// hosts only some of them (split.go; zero when it hosts all).
	Split config.SplitSettings
}

// Node is a running registry process.
type Node struct {
	opts     Options
	log      *slog.Logger
	Metrics  *prometheus.Registry
	Pools    map[db.Role]*pgxpool.Pool
	DBNames  map[db.Role]string
	Temporal client.Client
	kafka    *kgo.Client
	server   *api.Server
	engine   *gin.Engine // the public API, for Routes
	worker   sdkworker.Worker
	serveErr chan error
	stopOnce sync.Once
	// fedOpen is closed by StartFederation (nil: open from the start).
	fedOpen     chan struct{}
	fedOpenOnce sync.Once

	// Auth authenticates bearer tokens (set when the node hosts the
	// registry role) and sets api.Principal.
	Auth          gin.HandlerFunc
	RegistryStore *registrystore.Store
	Ledger        *ledgerstore.Store
	bonds         *bonds.Service // nil unless the node has both the registry and TEG roles
	transfers     *ledgerstore.GroupCommitter
	ledgerIdem    *ledgerstore.IdempotencyBatcher
	policies      map[db.Role]*db.Policy
	// TLS builds mTLS configs from the node's SVID (dev CA); SPIFFEID is
	// the node's TEG identity.
	TLS       *identity.TLS
	SPIFFEID  string
	mtlsURL   string
	bundleURL string
	closers   []func()
	// Peers are the registry's federated peer registries (nil without the
	// registry role).
	Peers *peerstore.Store
	// Xfer carries cross-registry transfers (nil without a TEG).
	Xfer *Xfer
	// Payments routes transfers here or to peers (nil without a TEG).
	Payments *payments.Service
	Bridge   *Bridge // cross-frame bridge (mainframe TEGs only)
	// PaidCalls issues and settles payment tokens (nil unless the node
	// has both the registry and TEG roles).
	PaidCalls    *paidcalls.Service
	xferSettings XferSettings
	remoteGate   *remoteSupplyGate // the mint gate when the EventStore is on another node
	bgCancel     context.CancelFunc
	bg           sync.WaitGroup
	// eventSigner signs what the node's relays publish (nil: event
	// authentication is off).
	eventSigner *events.Signer
	// disputeMetrics count the dispute flow (nil without a TEG).
	disputeMetrics *disputes.Metrics

	// reputation runs and serves trust scores (nil unless the node hosts
	// the EventStore).
	reputation *reputation.Service
	// funding allocates the mainframe's treasury to peers (nil without a TEG).
	funding *federation.Funding
	// cardSync signs, serves and pulls signed agent cards (set once the
	// mTLS identity is up; nil without a registry database).
	cardSync atomic.Pointer[federation.CardSync]
	// handshake is the two-sided peering handshake (set with cardSync).
	handshake atomic.Pointer[federation.Handshake]

	// split reaches the registry's roles hosted by other processes.
	split splitWiring
	// fed: discovery of the federation graph and account resolution
	// (federation_discovery.go).
	fed fedDiscovery
}

// Start creates and migrates the node's databases, connects to Temporal and
// Kafka, starts the API server and (for the worker role) the Temporal
// worker. On error everything already started is stopped again.
func Start(ctx context.Context, o Options) (n *Node, err error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ListenHost == "" {
		o.ListenHost = "127.0.0.1"
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if err := o.settingsOrDefaults(); err != nil {
		return nil, fmt.Errorf("node %s: %w", o.Registry.ID, err)
	}
	if o.DataDir == "" && o.Registry.HasRole(config.RoleRegistry) {
		// The registry keeps its signing key there; never guess a place.
		return nil, fmt.Errorf("node %s: DataDir is required for the registry role", o.Registry.ID)
	}
	log := o.Log.With("frame", o.Frame.ID, "registry", o.Registry.ID)
	n = &Node{opts: o, log: log, Metrics: prometheus.NewRegistry(), Pools: map[db.Role]*pgxpool.Pool{}, DBNames: map[db.Role]string{}, serveErr: make(chan error, 1), policies: map[db.Role]*db.Policy{}}
	if o.DeferFederation {
		n.fedOpen = make(chan struct{})
	}
	// The failure paths below return nil for the node, so the cleanup
	// holds its own reference to what was started.
	started := n
	defer func() {
		if err != nil {
			started.Stop(context.Background())
		}
	}()
	n.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range slices.Concat(db.Collectors(), ledgerstore.Collectors(), ledgerstore.XferCheckCollectors(), ledgerstore.CheckpointCollectors()) {
		n.Metrics.MustRegister(c)
	}

	for _, role := range n.dbRoles() {
		name := o.Registry.DBName(string(role))
		if role == db.RoleEventStore {
			name = o.Frame.EventStoreDBName()
		}
		pool, err := openRoleDB(ctx, o.PostgresAdminURL, name, role, log)
		if err != nil {
			return nil, err
		}
		n.Pools[role] = pool
		n.DBNames[role] = name
		if n.policies[role], err = db.LoadPolicy(ctx, pool); err != nil {
			return nil, err
		}
	}

	// A lazy client lets the node start (and report not-ready) while
	// Temporal is down; calls fail until it is back.
	n.Temporal, err = client.NewLazyClient(client.Options{
		HostPort:          o.TemporalAddr,
		Namespace:         o.Registry.TemporalNamespace(),
		Logger:            tlog.NewStructuredLogger(log.With("component", "temporal-sdk")),
		ConnectionOptions: o.TemporalConnection,
		Credentials:       o.TemporalCredentials,
	})
	if err != nil {
		return nil, fmt.Errorf("temporal client: %w", err)
	}
	if len(o.KafkaBrokers) > 0 {
		n.kafka, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(o.KafkaBrokers...), kgo.DialTimeout(2 * time.Second)}, o.KafkaOpts...)...)
		if err != nil {
			return nil, fmt.Errorf("kafka client: %w", err)
		}
	}

	if err := n.prepareSplit(); err != nil {
		return nil, err
	}
	engine := api.NewEngine(api.EngineOptions{Log: log, Registry: n.Metrics, MaxBodyBytes: o.MaxBodyBytes, Checks: n.checks(), TrustedProxies: o.TrustedProxies})
	if err := n.mountRoutes(ctx, engine); err != nil {
		return nil, err
	}
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.bgCancel = cancel
	if err := n.loadEventSigner(); err != nil {
		return nil, err
	}
	n.startBackground(bgCtx)
	n.server, err = api.Listen(net.JoinHostPort(o.ListenHost, strconv.Itoa(o.Registry.APIPort)), engine, log)
	if err != nil {
		return nil, err
	}
	srv, serveErr := n.server, n.serveErr // n is nil if Start fails below
	go func() { serveErr <- srv.Serve() }()
	if err := n.startMTLS(); err != nil {
		return nil, err
	}
	n.armRemoteSupplyGate()
	n.armSplit()

	if o.Registry.HasRole(config.RoleWorker) {
		var stores []activities.IdempotencySweeper
		for _, role := range []db.Role{db.RoleRegistry, db.RoleTEG} {
			if p := n.Pools[role]; p != nil {
				stores = append(stores, db.NewIdempotencyStore(p))
			}
		}
		// The activity structs this node can run; worker.Start runs every
		// workflow family whose structs are all here (nil ones are absent).
		acts := []any{&activities.Sweeper{Stores: stores}, n.stakingActivities(), n.governanceActivities(), n.governanceFederationActivities()}
		if n.Ledger != nil {
			acts = append(acts, &activities.HoldSweeper{Expirer: n.Ledger}, n.checkpointActivities())
		}
		if n.bonds != nil {
			acts = append(acts, n.bondActivities())
		}
		acts = append(acts, n.settlementActivities()...)
		acts = append(acts, n.disputeActivities())
		acts = append(acts, n.reputationActivities()...)
		acts = append(acts, n.bridgeActivities()...)
		acts = append(acts, n.cardSyncActivities())
		if n.Xfer != nil || n.Bridge != nil {
			// A Temporal started by an older build may lack the newer
			// search attributes; workflows fail to start without them.
			if err := worker.EnsureSearchAttributes(ctx, n.Temporal, o.Registry.TemporalNamespace()); err != nil {
				log.Warn("search attributes", "err", err)
			}
		}
		n.worker, err = worker.Start(ctx, n.Temporal, worker.Options{
			Registry: o.Registry.ID, TaskQueue: o.Registry.TaskQueue(), Log: log,
		}, acts...)
		if err != nil {
			return nil, err
		}
		n.applyReputationCron(ctx)
	}
	n.startXferRecovery()
	n.watchPeers()
	log.Info("node started", "api", n.server.URL(), "roles", o.Registry.Roles, "task_queue", o.Registry.TaskQueue())
	return n, nil
}

func (n *Node) dbRoles() []db.Role {
	var roles []db.Role
	r := n.opts.Registry
	if r.HasRole(config.RoleRegistry) {
		roles = append(roles, db.RoleRegistry)
	}
	if r.HasRole(config.RoleTEG) {
		roles = append(roles, db.RoleTEG)
	}
	if r.HasRole(config.RoleEventStore) {
		roles = append(roles, db.RoleEventStore)
	}
	return roles
}

func openRoleDB(ctx context.Context, adminURL, name string, role db.Role, log *slog.Logger) (*pgxpool.Pool, error) {
	if err := db.EnsureDatabase(ctx, adminURL, name); err != nil {
		return nil, err
	}
	dsn, err := db.WithDatabase(adminURL, name)
	if err != nil {
		return nil, err
	}
	pool, err := db.Open(ctx, dsn, db.PoolOptions{MaxConns: 32, ApplicationName: "theprotocol-" + string(role)})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx, pool, role, log); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// checks are the /readyz probes: every database, Temporal and Kafka.
func (n *Node) checks() []api.Check {
	checks := []api.Check{{Name: "postgres", Fn: func(ctx context.Context) error {
		for role, p := range n.Pools {
			if err := p.Ping(ctx); err != nil {
				return fmt.Errorf("%s database: %w", role, err)
			}
		}
		return nil
	}}, {Name: "temporal", Fn: func(ctx context.Context) error {
		_, err := n.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}}}
	if n.kafka != nil {
		checks = append(checks, api.Check{Name: "kafka", Fn: func(ctx context.Context) error { return n.kafka.Ping(ctx) }})
	}
	return append(checks, n.splitChecks()...)
}

// NodeInfo is GET /api/v1/node: who this node is.
type NodeInfo struct {
	Frame       string   `json:"frame"`
	Registry    string   `json:"registry"`
	Mainframe   bool     `json:"mainframe"`
	TrustDomain string   `json:"trust_domain"`
	Currency    string   `json:"currency"`
	Roles       []string `json:"roles"`
	Version     string   `json:"version"`
}

func (n *Node) mountRoutes(ctx context.Context, e *gin.Engine) error {
	v1 := e.Group("/api/v1")
	if err := n.openLedger(ctx); err != nil {
		return err
	}
	if err := n.mountRegistry(ctx, v1); err != nil {
		return err
	}
	n.wireSplit()
	n.mountLedger(v1)
	if err := n.mountAgentSVID(v1); err != nil {
		return err
	}
	if err := n.mountPaid(v1); err != nil {
		return err
	}
	n.mountStaking(v1)
	n.mountGovernance(v1)
	n.mountEventStore(v1)
	n.mountDisputes(v1)
	n.mountReputation(v1)
	n.mountBridge(v1)
	n.mountFederation(v1)
	n.mountCardSync(v1)
	n.mountTopology(v1)
	n.mountUI(e, v1)
	info := NodeInfo{
		Frame: n.opts.Frame.ID, Registry: n.opts.Registry.ID, Mainframe: n.opts.Registry.Mainframe,
		TrustDomain: n.opts.Frame.TrustDomain, Currency: n.opts.Frame.Currency, Roles: n.opts.Registry.Roles, Version: Version,
	}
	v1.GET("/node", func(c *gin.Context) { c.JSON(http.StatusOK, info) })
	return n.mountOpenAPI(e)
}

// URL is the API base URL.
func (n *Node) URL() string { return n.server.URL() }

// Addr is the API's bound address.
func (n *Node) Addr() string { return n.server.Addr() }

// Err returns a channel that yields if the API server stops on its own.
func (n *Node) Err() <-chan error { return n.serveErr }

// Stop shuts down gracefully: the API stops accepting and drains, the worker
// finishes in-flight tasks, then connections close. Safe to call twice.
func (n *Node) Stop(ctx context.Context) {
	n.stopOnce.Do(func() {
		if n.server != nil {
			if err := n.server.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
				n.log.Warn("api shutdown", "err", err)
			}
		}
		if n.bgCancel != nil {
			n.bgCancel()
			n.bg.Wait()
		}
		// After the API drained: pending transfers commit, then the
		// idempotency records of their responses.
		if n.transfers != nil {
			n.transfers.Close()
		}
		if n.ledgerIdem != nil {
			n.ledgerIdem.Close()
		}
		for i := len(n.closers) - 1; i >= 0; i-- {
			n.closers[i]()
		}
		if n.worker != nil {
			n.worker.Stop()
		}
		if n.Temporal != nil {
			n.Temporal.Close()
		}
		if n.kafka != nil {
			n.kafka.Close()
		}
		for _, p := range n.Pools {
			p.Close()
		}
		n.log.Info("node stopped")
	})
}
