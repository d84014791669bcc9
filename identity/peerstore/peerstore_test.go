package peerstore_test

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/identity/peerstore"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	alphaTD = spiffeid.RequireTrustDomainFromString("alpha.theprotocol.test")
	betaTD  = spiffeid.RequireTrustDomainFromString("beta.theprotocol.test")
)

type node struct {
	id      spiffeid.ID
	src     *identity.DevSource
	bundles *identity.Bundles
	tls     *identity.TLS
}

func newNode(t *testing.T, ca *identity.CA, path string) *node {
	id := spiffeid.RequireFromPath(ca.TrustDomain(), path)
	src, err := identity.NewDevSource(ca, id, identity.DevSourceOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Close() })
	b := identity.NewBundles(id.TrustDomain(), src, identity.FederationOptions{})
	return &node{id: id, src: src, bundles: b, tls: identity.NewTLS(src, b, identity.TLSOptions{})}
}

func serveTLS(t *testing.T, cfg *http.Server) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.ReadHeaderTimeout = 5 * time.Second
	cfg.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = cfg.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = cfg.Close() })
	return "https://" + ln.Addr().String() + "/"
}

func TestPeerLifecycleOnPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC()
	tdb := testenv.NewDB(t, db.RoleRegistry)

	alphaCA, err := identity.NewEphemeralCA(alphaTD, identity.CAOptions{})
	require.NoError(t, err)
	betaCA, err := identity.NewEphemeralCA(betaTD, identity.CAOptions{})
	require.NoError(t, err)
	a := newNode(t, alphaCA, "/registry/main")
	b := newNode(t, betaCA, "/registry/main")
	require.NoError(t, b.bundles.PinPeer(identity.Peer{
		TrustDomain: alphaTD, EndpointURL: "https://127.0.0.1:1/", Profile: identity.ProfileHTTPSSPIFFE, EndpointID: a.id,
	}, alphaCA.SPIFFEBundle()))

	h, err := identity.BundleEndpointHandler(betaTD, b.src)
	require.NoError(t, err)
	betaEndpoint := serveTLS(t, &http.Server{Handler: h, TLSConfig: b.tls.BundleEndpointConfig()})

	store := peerstore.New(tdb.Pool, alphaTD, a.bundles)
	require.NoError(t, store.Load(ctx))
	tracker := identity.NewConnTracker()
	store.PeerSet().OnRemove(func(id spiffeid.ID) { tracker.CloseID(id) })
	apiURL := serveTLS(t, &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		TLSConfig: a.tls.ServerConfig(identity.AuthorizePeers(store.PeerSet())),
		ConnState: tracker.ConnState,
	})
	client := b.tls.HTTPClient(identity.AuthorizeID(a.id), identity.HTTPClientOptions{Timeout: 5 * time.Second})
	get := func() error {
		resp, err := client.Get(apiURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	require.Error(t, get(), "not yet a peer")

	peer := peerstore.Peer{
		ID: b.id, BaseURL: "https://beta.example/", BundleEndpointURL: betaEndpoint,
		Profile: identity.ProfileHTTPSSPIFFE, EndpointID: b.id, InitialBundle: betaCA.SPIFFEBundle(),
	}
	require.NoError(t, store.Add(ctx, peer, now))
	require.NoError(t, get())
	require.NoError(t, store.Refresh(ctx, now))

	// A fresh node loading from Postgres trusts the same peer without fetching.
	a2 := newNode(t, alphaCA, "/registry/main")
	store2 := peerstore.New(tdb.Pool, alphaTD, a2.bundles)
	require.NoError(t, store2.Load(ctx))
	require.True(t, store2.PeerSet().Allowed(b.id))
	pinned, ok := a2.bundles.Pinned(betaTD)
	require.True(t, ok)
	require.True(t, pinned.Equal(betaCA.SPIFFEBundle()))

	// Removal refuses the next call at once (pooled connection closed).
	require.NoError(t, store.Remove(ctx, b.id, now))
	require.Error(t, get())
	require.Equal(t, apperr.NotFound, apperr.CodeOf(store.Remove(ctx, b.id, now)))
	_, err = a.bundles.GetX509BundleForTrustDomain(betaTD)
	require.Error(t, err, "last peer of beta removed: bundle dropped")

	require.NoError(t, store2.Load(ctx))
	require.False(t, store2.PeerSet().Allowed(b.id))
}
