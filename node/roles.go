package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api/eventstoreapi"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/api/registryapi"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/bonds"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/onboarding"
	"github.com/theprotocol-dev/theprotocol/payments"
	"github.com/theprotocol-dev/theprotocol/registry"
	"github.com/theprotocol-dev/theprotocol/relay"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// noAuth stands in for authentication on nodes without the registry role:
// it sets no principal, so every route behind api.RequireScope answers 401.
func noAuth(c *gin.Context) { c.Next() }

func (n *Node) mountRegistry(ctx context.Context, v1 *gin.RouterGroup) error {
	n.Auth = noAuth
	pool := n.Pools[db.RoleRegistry]
	if pool == nil {
		return nil
	}
	o := n.opts
	settings := o.RegistrySettings
	key, err := auth.LoadOrCreateKey(settings.KeyFile(o.DataDir, o.Registry.ID))
	if err != nil {
		return fmt.Errorf("registry signing key: %w", err)
	}
	n.RegistryStore = registrystore.New(pool, n.DBNames[db.RoleRegistry], o.Frame.ID, o.Registry.ID, n.policies[db.RoleRegistry].Guard())
	onboard := &onboarding.Service{Registry: n.RegistryStore, Now: o.Now, Log: n.log}
	if n.Ledger != nil {
		// Agents and developer wallets get their TEG account before the
		// registry commits them (same node; another node's TEG would be
		// reached over mTLS).
		onboard.Ledger = n.Ledger
		// The reputation bond: agent creation locks it, the
		// BondMaturation workflow on this registry's task queue matures or
		// forfeits it.
		onboard.Bond = &onboarding.Bond{
			Units: registry.DefaultBondUnits, Maturity: o.BondSettings, Temporal: n.Temporal, TaskQueue: o.Registry.TaskQueue(),
		}
		n.bonds = &bonds.Service{Ledger: n.Ledger, Agents: n.RegistryStore, Temporal: n.Temporal, Trust: bonds.FixedTrust(10000), Log: n.log}
	} else if n.split.teg != nil {
		// The TEG runs in another process (split.go): the same saga, each
		// ledger step over mTLS; that TEG's worker runs the bond workflow.
		onboard.Ledger = n.split.teg
		onboard.Bond = &onboarding.Bond{
			Units: registry.DefaultBondUnits, Maturity: o.BondSettings, Temporal: n.Temporal, TaskQueue: o.Registry.TaskQueue(),
		}
	}
	h, err := registryapi.New(registryapi.Options{
		Store:        n.RegistryStore,
		Onboarding:   onboard,
		Bonds:        n.bondStatuses(),
		Idempotency:  db.NewIdempotencyStore(pool),
		SigningKey:   key,
		Issuer:       registryapi.Issuer(o.Frame.TrustDomain, o.Registry.ID),
		Audience:     registryapi.Audience(o.Frame.ID),
		TokenTTL:     settings.TokenTTL,
		BootstrapTTL: settings.BootstrapTTL,
		Now:          o.Now,
		Log:          n.log,
	})
	if err != nil {
		return err
	}
	h.Mount(v1)
	n.Auth = h.AuthMiddleware()
	if o.WriteAdminCredentials {
		return n.ensureAdminCredentials(ctx)
	}
	return nil
}

// AdminCredentialsFile is where dev writes a registry's admin client.
func AdminCredentialsFile(dataDir, registryID string) string {
	return filepath.Join(dataDir, registryID, "admin-credentials.json")
}

func (n *Node) ensureAdminCredentials(ctx context.Context) error {
	path := AdminCredentialsFile(n.opts.DataDir, n.opts.Registry.ID)
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	creds, err := registryapi.CreateAdminClient(ctx, n.RegistryStore, "dev-admin", n.opts.Now())
	if err != nil {
		return fmt.Errorf("create dev admin client: %w", err)
	}
	raw, _ := json.MarshalIndent(map[string]string{
		"client_id": creds.ClientID, "client_secret": creds.ClientSecret,
		"token_url": "/api/v1/auth/token", "grant_type": "client_credentials",
	}, "", "  ")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o600)
}

// openLedger opens the TEG store, its group committer and idempotency
// batcher, and mints the genesis supply once on the mainframe.
func (n *Node) openLedger(ctx context.Context) error {
	pool := n.Pools[db.RoleTEG]
	if pool == nil {
		return nil
	}
	o := n.opts
	var gate ledgerstore.SupplyGate
	if o.Registry.Mainframe {
		gate = n.supplyGate()
	}
	n.Ledger = ledgerstore.New(pool, ledgerstore.Options{
		Frame: o.Frame.ID, Registry: o.Registry.ID, Mainframe: o.Registry.Mainframe,
		Gate: gate, Guard: n.policies[db.RoleTEG].Guard(), Now: o.Now, Log: n.log,
		ExposureCaps:   xferstate.Caps{Default: o.PeerSettings.ExposureCapUnits, PerPeer: o.PeerSettings.ExposureCaps},
		TreasuryFunder: treasuryFunder(o),
	})
	n.Metrics.MustRegister(n.Ledger.XferCollector())
	n.transfers = n.Ledger.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
	n.ledgerIdem = ledgerstore.NewIdempotencyBatcher(pool)
	n.setupXfer()
	if o.Registry.Mainframe && o.Frame.GenesisSupplyUnits > 0 {
		if _, err := n.Ledger.Genesis(ctx, o.Frame.GenesisSupplyUnits); err != nil {
			return fmt.Errorf("genesis mint: %w", err)
		}
	}
	return nil
}

func (n *Node) mountLedger(v1 *gin.RouterGroup) {
	if n.Ledger == nil {
		return
	}
	n.Payments = &payments.Service{Ledger: n.Ledger, Transfers: n.transfers}
	if n.Xfer != nil {
		n.Payments.Cross = &payments.Cross{Router: n.homeResolver(), Accepter: n.Xfer.Accepter, Settlement: n.Xfer.Batcher}
	}
	ledgerapi.New(ledgerapi.Options{
		Store: n.Ledger, Payments: n.Payments, Idempotency: n.ledgerIdem, Auth: n.Auth, Now: n.opts.Now,
	}).Mount(v1)
	n.mountSagas(v1)
}

func (n *Node) mountEventStore(v1 *gin.RouterGroup) {
	pool := n.Pools[db.RoleEventStore]
	if pool == nil {
		return
	}
	h := &eventstoreapi.Handler{
		Frame: n.opts.Frame.ID, Registry: n.opts.Registry.ID, Pool: pool,
		Outbox: db.NewOutboxWriter(n.opts.Frame.ID, n.opts.Registry.ID, events.SourceEventStore, n.policies[db.RoleEventStore].Guard()),
		Idem:   db.NewIdempotencyStore(pool),
		Auth:   n.Auth,
		Now:    n.opts.Now,
	}
	h.Mount(v1)
}

// startBackground runs the outbox relays of every role database and, on
// the node hosting the frame's EventStore, its consumer and reactors.
func (n *Node) startBackground(ctx context.Context) {
	o := n.opts
	watch := n.startReconciler(ctx)
	if len(o.KafkaBrokers) == 0 {
		n.log.Warn("no Kafka brokers configured: outbox relays and the EventStore consumer are off")
		return
	}
	topic := o.Frame.Topic()
	if err := EnsureTopics(ctx, o.KafkaBrokers, []string{topic}, n.log, o.KafkaOpts...); err != nil {
		// Not fatal: relays and the consumer retry until the topic exists.
		n.log.Warn("ensure kafka topic", "topic", topic, "err", err)
	}
	var progress relay.ProgressReader
	if es := n.Pools[db.RoleEventStore]; es != nil {
		progress = ingest.ProgressReader{Pool: es}
	} else if o.EventStoreURL != "" {
		progress = relay.HTTPProgress{BaseURL: o.EventStoreURL}
	}
	sources := map[db.Role]string{db.RoleRegistry: events.SourceRegistry, db.RoleTEG: events.SourceTEG, db.RoleEventStore: events.SourceEventStore}
	for role, pool := range n.Pools {
		r := relay.New(pool, o.KafkaBrokers, relay.Options{
			Registry: o.Registry.ID, Source: sources[role], Topic: topic,
			Progress: progress, Log: n.log, Metrics: n.Metrics, Now: o.Now, Kafka: o.KafkaOpts,
			Signer: n.eventSigner,
		})
		n.goBackground(func() { _ = r.Run(ctx) })
	}
	es := n.Pools[db.RoleEventStore]
	if es == nil {
		return
	}
	m := ingest.NewMetrics(n.Metrics)
	n.goBackground(func() {
		for ctx.Err() == nil {
			a, err := ingest.NewApplier(ctx, es, o.Frame.ID, m, n.log, o.Now, n.eventStoreAuth()...)
			if err != nil {
				n.log.Error("eventstore applier", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Second):
				}
				continue
			}
			_ = ingest.NewConsumer(a, ingest.ConsumerOptions{Brokers: o.KafkaBrokers, Topic: topic, Log: n.log, Kafka: o.KafkaOpts}).Run(ctx)
		}
	})
	reactor := watch.Reactor()
	kafka := o.KafkaOpts
	n.goBackground(func() { _ = ingest.RunReactor(ctx, reactor, es, o.Frame.ID, o.KafkaBrokers, topic, n.log, kafka...) })
	n.startDisputeEnforcer(ctx, topic)
}

func (n *Node) goBackground(f func()) {
	n.bg.Add(1)
	go func() { defer n.bg.Done(); f() }()
}

// treasuryFunder is the registry whose treasury may fund this one's across
// registries: the frame's mainframe, for every other registry.
func treasuryFunder(o Options) string {
	if o.Registry.Mainframe {
		return ""
	}
	return o.Frame.Mainframe().ID
}
