package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/federationapi"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/federation"
	"github.com/theprotocol-dev/theprotocol/federation/cardsig"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// cardFeedPath is the card feed on the mTLS listener.
const cardFeedPath = "/internal/v1/federation/cards"

// CardSync is the node's signed agent-card sync (nil until its mTLS
// identity is up, and on nodes without a registry database).
func (n *Node) CardSync() *federation.CardSync { return n.cardSync.Load() }

// attachCardSyncTLS builds the card sync once the node has an SVID and
// serves the card feed to active peers on the mTLS listener.
func (n *Node) attachCardSyncTLS(mux *http.ServeMux, td spiffeid.TrustDomain, src identity.Source) error {
	pool := n.Pools[db.RoleRegistry]
	if pool == nil || n.Peers == nil {
		return nil
	}
	key, err := auth.LoadOrCreateKey(n.opts.RegistrySettings.KeyFile(n.opts.DataDir, n.opts.Registry.ID))
	if err != nil {
		return fmt.Errorf("card sync key: %w", err)
	}
	set := n.opts.FederationSync.OrDefaults()
	peers := registrystore.NewPeers(pool)
	// One client for every peer: the frame's members are verified by the
	// handshake, and each pull checks the answering SVID is the peer's.
	cl := n.TLS.HTTPClient(identity.AuthorizeMemberOf(td), identity.HTTPClientOptions{Timeout: 20 * time.Second})
	cs := &federation.CardSync{
		Self: n.opts.Registry.ID, TrustDomain: td, Store: registrystore.NewFederationCards(pool), Key: key,
		Attest: func(pub ed25519.PublicKey, now time.Time) (cardsig.KeyAttestation, error) {
			svid, err := src.GetX509SVID()
			if err != nil {
				return cardsig.KeyAttestation{}, err
			}
			return cardsig.Attest(svid, n.opts.Registry.ID, pub, now)
		},
		Bundles: src,
		Peer: func(ctx context.Context, registry string) (federation.PeerLink, error) {
			id, err := identity.TEGID(td, registry)
			if err != nil {
				return federation.PeerLink{}, apperr.New(apperr.Invalid, "%q is not a registry ID", registry)
			}
			l, err := peers.Get(ctx, id.String())
			if err != nil {
				return federation.PeerLink{}, err
			}
			return federation.PeerLink{Active: l.Status == registrystore.PeerActive, BaseURL: l.BaseURL}, nil
		},
		Fetch: func(ctx context.Context, registry, baseURL string, after int64, limit int) (federation.FeedPage, int64, error) {
			return fetchCardFeed(ctx, cl, td, registry, baseURL, after, limit)
		},
		MaxHops: set.MaxHops, PageSize: set.PageSize,
		Metrics: federation.NewCardMetrics(n.Metrics), Log: n.log.With("component", "card-sync"), Now: n.opts.Now,
	}
	mux.HandleFunc("GET "+cardFeedPath, func(w http.ResponseWriter, r *http.Request) {
		caller, err := identity.PeerID(r.TLS)
		reg, ok := strings.CutPrefix(caller.Path(), "/teg/")
		if err != nil || caller.TrustDomain() != td || !ok || !n.Peers.PeerSet().Allowed(caller) {
			writeMTLSError(w, apperr.New(apperr.PeerNotAdmitted, "only an active peer registry may pull the card feed"))
			return
		}
		after, err1 := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		limit, err2 := strconv.Atoi(r.URL.Query().Get("limit"))
		if err1 != nil || err2 != nil {
			writeMTLSError(w, apperr.New(apperr.Invalid, "after and limit must be integers"))
			return
		}
		page, err := cs.Serve(r.Context(), reg, after, limit)
		if err != nil {
			writeMTLSError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(page)
	})
	n.cardSync.Store(cs)
	return nil
}

func writeMTLSError(w http.ResponseWriter, err error) {
	code := apperr.CodeOf(err)
	status := api.StatusOf(code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	msg := "internal error"
	if status < http.StatusInternalServerError || code == apperr.Unavailable {
		msg = err.Error()
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": string(code), "message": msg}})
}

// fetchCardFeed pulls one page of registry's card feed at baseURL.
func fetchCardFeed(ctx context.Context, cl *http.Client, td spiffeid.TrustDomain, registry, baseURL string, after int64, limit int) (federation.FeedPage, int64, error) {
	want, err := identity.TEGID(td, registry)
	if err != nil {
		return federation.FeedPage{}, 0, err
	}
	u := fmt.Sprintf("%s%s?after=%d&limit=%d", baseURL, cardFeedPath, after, limit)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return federation.FeedPage{}, 0, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return federation.FeedPage{}, 0, err
	}
	defer resp.Body.Close()
	if got, err := identity.PeerID(resp.TLS); err != nil || got != want {
		return federation.FeedPage{}, 0, fmt.Errorf("the listener at %s is %s, not %s", baseURL, got, want)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, federation.MaxFeedBytes+1))
	if err != nil {
		return federation.FeedPage{}, 0, err
	}
	if len(raw) > federation.MaxFeedBytes {
		return federation.FeedPage{}, 0, fmt.Errorf("card feed page larger than %d bytes", federation.MaxFeedBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return federation.FeedPage{}, int64(len(raw)), fmt.Errorf("card feed answered %d: %s", resp.StatusCode, clipBody(raw))
	}
	var page federation.FeedPage
	if err := json.Unmarshal(raw, &page); err != nil {
		return federation.FeedPage{}, int64(len(raw)), fmt.Errorf("card feed page: %w", err)
	}
	return page, int64(len(raw)), nil
}

func clipBody(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// cardSyncActivities is the worker's card sync activity (none without a
// registry database or before the mTLS identity is up).
func (n *Node) cardSyncActivities() any {
	cs := n.CardSync()
	if cs == nil {
		return nil
	}
	return &activities.FederationSync{Puller: cs}
}

// syncPeers makes sure a FederationSync workflow runs for every active
// peer of this frame (one per peer; an existing run is kept). Called at
// start and whenever the peer set is re-read, so a reinstated peer's
// sync starts again. Failures are logged: the next re-read retries.
func (n *Node) syncPeers(ctx context.Context) {
	cs := n.CardSync()
	if cs == nil || n.worker == nil || !n.opts.Registry.HasRole(config.RoleWorker) || !n.federationOpen() {
		return
	}
	set := n.opts.FederationSync.OrDefaults()
	peers := registrystore.NewPeers(n.Pools[db.RoleRegistry])
	after := ""
	for range 100 {
		rows, err := peers.ListActive(ctx, after, 500)
		if err != nil {
			if ctx.Err() == nil { // a stopping node's cancelled read is no failure
				n.log.Warn("card sync: list peers", "err", err)
			}
			return
		}
		for _, r := range rows {
			id, err := spiffeid.FromString(r.SpiffeID)
			reg, ok := strings.CutPrefix(id.Path(), "/teg/")
			if err != nil || id.TrustDomain() != cs.TrustDomain || !ok {
				continue
			}
			_, err = n.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: workflows.FederationSyncWorkflowID(n.opts.Registry.ID, reg), TaskQueue: n.opts.Registry.TaskQueue(),
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			}, workflows.FederationSyncName, workflows.FederationSyncInput{Peer: reg, Interval: set.Interval})
			if err != nil && ctx.Err() == nil {
				n.log.Warn("card sync: start", "peer", reg, "err", err)
			}
		}
		if len(rows) < 500 {
			return
		}
		after = rows[len(rows)-1].SpiffeID
	}
}

// mountCardSync serves GET /federation/cards/{did} and the admin's accept
// of a peering request.
func (n *Node) mountCardSync(v1 *gin.RouterGroup) {
	if n.Pools[db.RoleRegistry] == nil {
		return
	}
	n.mountHandshake(v1)
	federationapi.MountCards(v1, federationapi.CardsOptions{Auth: n.Auth,
		Cards: func(ctx context.Context, did string) ([]federation.CardView, error) {
			cs := n.CardSync()
			if cs == nil {
				return nil, apperr.New(apperr.Unavailable, "card sync is not running on this node")
			}
			return cs.Cards(ctx, did)
		}})
}
