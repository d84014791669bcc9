package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/recon"
)

// Reconciliation on a node (docs/adr/0015): a TEG writes balance
// checkpoints (the balance-checkpoint workflow family; POST
// /admin/checkpoints); the node hosting the EventStore runs the
// reconciler and serves the audit to the mainframe over mTLS; the
// mainframe's mint gate reads the audit, locally or from that node, and
// refuses mint and burn unless it answers clean.

// ReconSettings tune checkpoints and reconciliation (config.ReconSettings).
type ReconSettings = config.ReconSettings

// SupplyAuditPath is the EventStore node's audit on its mTLS listener, for
// the mainframe's mint gate.
const SupplyAuditPath = "/internal/v1/supply-audit"

// maxAuditBody bounds the audit response the gate reads.
const maxAuditBody = 1 << 20

// supplyGate is the mint gate of this node's ledger: the EventStore's own
// audit when this node hosts it, else the EventStore node's over mTLS.
// There is no other: a frame without an EventStore gets a gate that
// always refuses.
func (n *Node) supplyGate() ledgerstore.SupplyGate {
	if es := n.Pools[db.RoleEventStore]; es != nil {
		return ingest.SupplyGate{Pool: es, Frame: n.opts.Frame.ID}
	}
	g := &remoteSupplyGate{frame: n.opts.Frame.ID}
	target, serverID, err := n.eventStoreMTLS()
	if err != nil {
		g.err = err
	} else {
		g.url, g.serverID = target+SupplyAuditPath, serverID
	}
	n.remoteGate = g
	return g
}

// eventStoreMTLS finds the mTLS listener and SPIFFE ID of the node hosting
// the frame's EventStore: the configured URL, else the topology's
// EventStore registry's mtls_port on the EventStore API URL's host.
func (n *Node) eventStoreMTLS() (string, spiffeid.ID, error) {
	o := n.opts
	var es *config.Registry
	for i := range o.Frame.Registries {
		if o.Frame.Registries[i].HasRole(config.RoleEventStore) {
			es = &o.Frame.Registries[i]
			break
		}
	}
	if es == nil {
		return "", spiffeid.ID{}, fmt.Errorf("frame %s has no registry with the eventstore role", o.Frame.ID)
	}
	td, err := identity.FrameTrustDomain(o.Frame)
	if err != nil {
		return "", spiffeid.ID{}, err
	}
	id, err := identity.TEGID(td, es.ID)
	if err != nil {
		return "", spiffeid.ID{}, err
	}
	if u := o.ReconSettings.EventStoreMTLSURL; u != "" {
		return u, id, nil
	}
	host := o.ListenHost
	if u, err := url.Parse(o.EventStoreURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	if es.MTLSPort == 0 {
		return "", spiffeid.ID{}, fmt.Errorf("registry %s hosts the EventStore but has no mtls_port in the topology; set -eventstore-mtls-url", es.ID)
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(es.MTLSPort)), id, nil
}

// remoteSupplyGate asks the EventStore's node for the audit over mTLS,
// authenticating it by its SPIFFE ID. Until the node's own SVID is there
// (armRemoteSupplyGate), and whenever the call fails, the audit counts as
// unreachable: mint and burn are refused.
type remoteSupplyGate struct {
	frame    string
	url      string
	serverID spiffeid.ID
	err      error // why there is no EventStore to ask
	client   atomic.Pointer[http.Client]
}

// armRemoteSupplyGate gives the remote gate its mTLS client once the
// node's SVID source is up.
func (n *Node) armRemoteSupplyGate() {
	if n.remoteGate == nil || n.TLS == nil || n.remoteGate.err != nil {
		return
	}
	n.remoteGate.client.Store(n.TLS.HTTPClient(identity.AuthorizeID(n.remoteGate.serverID), identity.HTTPClientOptions{Timeout: 5 * time.Second}))
}

// SupplyVerdict implements ledgerstore.SupplyGate.
func (g *remoteSupplyGate) SupplyVerdict(ctx context.Context) (recon.Verdict, error) {
	if g.err != nil {
		return recon.Verdict{}, g.err
	}
	cl := g.client.Load()
	if cl == nil {
		return recon.Verdict{}, errors.New("no mTLS identity yet to reach the EventStore")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
	if err != nil {
		return recon.Verdict{}, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return recon.Verdict{}, fmt.Errorf("ask the EventStore for the supply audit: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAuditBody))
	if err != nil {
		return recon.Verdict{}, fmt.Errorf("read the supply audit: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return recon.Verdict{}, fmt.Errorf("the EventStore answered %d to the supply audit", resp.StatusCode)
	}
	var rep ingest.AuditReport
	if err := json.Unmarshal(body, &rep); err != nil {
		return recon.Verdict{}, fmt.Errorf("decode the supply audit: %w", err)
	}
	if rep.Frame != g.frame {
		return recon.Verdict{}, fmt.Errorf("the EventStore answered for frame %q, not %q", rep.Frame, g.frame)
	}
	return rep.Verdict(), nil
}

// attachSupplyAuditTLS serves the audit on the mTLS listener of the node
// hosting the EventStore, to workloads of the frame's own trust domain
// (the mainframe's gate); peers of other frames are refused.
func (n *Node) attachSupplyAuditTLS(mux *http.ServeMux, td spiffeid.TrustDomain) {
	es := n.Pools[db.RoleEventStore]
	if es == nil {
		return
	}
	mux.HandleFunc("GET "+SupplyAuditPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		caller, err := identity.PeerID(r.TLS)
		if err != nil || !caller.MemberOf(td) {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error":{"code":"forbidden","message":"the supply audit is served to the frame's own workloads"}}`)
			return
		}
		rep, err := ingest.Audit(r.Context(), es, n.opts.Frame.ID)
		if err != nil {
			n.log.Warn("supply audit for the mint gate", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"unavailable","message":"supply audit unavailable"}}`)
			return
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
}

// startReconciler runs the reconciler on the node hosting the EventStore,
// and the supply invariant watch it shares with the reactor.
func (n *Node) startReconciler(ctx context.Context) *ingest.SupplyWatch {
	es := n.Pools[db.RoleEventStore]
	if es == nil {
		return nil
	}
	s := n.opts.ReconSettings
	watch := ingest.NewSupplyWatch(es, n.opts.Frame.ID, n.Metrics, n.log)
	n.Metrics.MustRegister(ingest.NewAuditCollector(es, n.opts.Frame.ID))
	r := ingest.NewReconciler(es, n.opts.Frame.ID, ingest.ReconcileOptions{
		Grace: s.Grace, StaleAfter: s.StaleAfter, CheckpointMaxAge: s.CheckpointMaxAge, Every: s.Every,
		AfterPass: watch.AfterPass, Metrics: ingest.NewReconMetrics(n.Metrics), Now: n.opts.Now, Log: n.log,
	})
	n.goBackground(func() { _ = r.Run(ctx) })
	return watch
}

// checkpointActivities are the balance-checkpoint family's activities
// (nil without a TEG).
func (n *Node) checkpointActivities() *activities.BalanceCheckpoints {
	if n.Ledger == nil {
		return nil
	}
	return &activities.BalanceCheckpoints{Ledger: checkpointLedger{n.Ledger}, Every: n.opts.ReconSettings.CheckpointEvery, Now: n.opts.Now}
}

// checkpointLedger adapts the ledger to activities.CheckpointLedger.
type checkpointLedger struct{ s *ledgerstore.Store }

var _ activities.CheckpointLedger = checkpointLedger{}

func (l checkpointLedger) WriteBalanceCheckpoint(ctx context.Context) (int64, error) {
	cp, err := l.s.WriteCheckpoint(ctx)
	return cp.CoversSeq, err
}

func (l checkpointLedger) LastBalanceCheckpointAt(ctx context.Context) (time.Time, error) {
	cp, found, err := l.s.LastCheckpoint(ctx)
	if err != nil || !found {
		return time.Time{}, err
	}
	return cp.TakenAt, nil
}
