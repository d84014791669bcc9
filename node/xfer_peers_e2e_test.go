package node_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/identity/peerstore"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/xfer"
)

// nodeMetric reads a labelled counter or gauge of n (0 when absent).
func nodeMetric(t *testing.T, n *node.Node, name, label, value string) float64 {
	t.Helper()
	mfs, err := n.Metrics.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// participantCall posts body to the target's participant API path with
// the client TLS config cfg and returns the status and the error code
// ("" on success) with the raw answer.
func (p *xferPair) participantCall(cfg *tls.Config, path, body string) (int, string, string) {
	p.t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := cl.Post(p.dst.MTLSURL()+path, "application/json", strings.NewReader(body))
	require.NoError(p.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	var eb struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(raw, &eb)
	return resp.StatusCode, eb.Error.Code, string(raw)
}

// prepareBody is a prepare (or commit) call's body: one transfer's terms.
func (p *xferPair) prepareBody(id uuid.UUID, amount int64) string {
	return fmt.Sprintf(`{"transfers":[{"id":%q,"from":%q,"to":%q,"amount_units":%d,"currency":%q}]}`, id, p.alice, p.bob, amount, p.frame.Currency)
}

func (p *xferPair) prepareStatus(id uuid.UUID) string {
	p.t.Helper()
	var st string
	err := p.dst.Pools[db.RoleTEG].QueryRow(context.Background(), `SELECT status FROM xfer_prepares WHERE transfer_id = $1`, id).Scan(&st)
	if err != nil {
		return "none"
	}
	return st
}

// TestCrossRegistryPeerLimits runs two registries of one frame, the
// target with a low exposure cap (50 AVT) for its peers:
//
//   - a federated peer of another trust domain, whose TEG carries the
//     source registry's very name, passes the mTLS handshake (it is in the
//     peer set, its bundle pinned) but is refused by the participant API
//     with 403 peer_not_admitted, counted, and prepares nothing;
//   - a transfer that would take the source's exposure past the cap is
//     refused at prepare: the saga aborts it, the sender's hold is voided,
//     the refusal is counted per peer and the exposure gauge shows what
//     was credited;
//   - after a restart with the cap lowered below a transfer already
//     prepared, its commit is refused (422 exposure_cap_exceeded), nothing
//     is credited, and the refusal is counted.
func TestCrossRegistryPeerLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startXferPair(t, func(o *node.Options) {
		o.PeerSettings = config.PeerSettings{ExposureCapUnits: 50 * avt}
	})
	td := spiffeid.RequireTrustDomainFromString(p.frame.TrustDomain)
	frameCA, err := identity.OpenCA(p.srcDir, td, identity.CAOptions{})
	require.NoError(t, err)
	srcSVID, err := frameCA.Issue(spiffeid.RequireFromPath(td, "/teg/"+p.srcReg.ID), time.Hour)
	require.NoError(t, err)
	asSource := tlsconfig.MTLSClientConfig(srcSVID, frameCA.X509Bundle(), tlsconfig.AuthorizeAny())

	t.Run("a peer of another trust domain is refused by the participant API", func(t *testing.T) {
		otherTD := spiffeid.RequireTrustDomainFromString("other-" + p.frame.TrustDomain)
		other, err := identity.NewEphemeralCA(otherTD, identity.CAOptions{})
		require.NoError(t, err)
		// The other trust domain's bundle endpoint (https_spiffe), so the
		// target can federate with it.
		endpoint, err := other.Issue(spiffeid.RequireFromPath(otherTD, "/bundle-endpoint"), time.Hour)
		require.NoError(t, err)
		h, err := identity.BundleEndpointHandler(otherTD, other.X509Bundle())
		require.NoError(t, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := &http.Server{Handler: h, TLSConfig: tlsconfig.TLSServerConfig(endpoint), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.ServeTLS(ln, "", "") }()
		t.Cleanup(func() { _ = srv.Close() })

		// Its TEG reuses the source registry's name.
		foreign := spiffeid.RequireFromPath(otherTD, "/teg/"+p.srcReg.ID)
		require.NoError(t, p.dst.Peers.Add(ctx, peerstore.Peer{
			ID: foreign, BaseURL: "https://127.0.0.1:1",
			BundleEndpointURL: "https://" + ln.Addr().String() + "/", Profile: identity.ProfileHTTPSSPIFFE,
			EndpointID: endpoint.ID, InitialBundle: other.SPIFFEBundle(),
		}, time.Now()))
		t.Cleanup(func() { _ = p.dst.Peers.Remove(context.Background(), foreign, time.Now()) })
		svid, err := other.Issue(foreign, time.Hour)
		require.NoError(t, err)
		// It verifies the target with the frame's bundle; the target
		// verifies it with the pinned bundle of its trust domain.
		asForeign := tlsconfig.MTLSClientConfig(svid, frameCA.X509Bundle(), tlsconfig.AuthorizeAny())

		id := uuid.New()
		before := nodeMetric(t, p.dst, "xfer_participant_refused_total", "reason", xfer.RefusedForeignTrustDomain)
		status, code, raw := p.participantCall(asForeign, xfer.PathPrepare, p.prepareBody(id, avt))
		require.Equal(t, http.StatusForbidden, status, raw)
		require.Equal(t, "peer_not_admitted", code)
		require.Contains(t, raw, foreign.String())
		require.Equal(t, "none", p.prepareStatus(id), "nothing prepared for it")
		require.Equal(t, before+1, nodeMetric(t, p.dst, "xfer_participant_refused_total", "reason", xfer.RefusedForeignTrustDomain))
		// Every other call too.
		status, code, _ = p.participantCall(asForeign, xfer.PathCommit, p.prepareBody(id, avt))
		require.Equal(t, http.StatusForbidden, status)
		require.Equal(t, "peer_not_admitted", code)

		// The source's own TEG is admitted on the same listener.
		status, _, raw = p.participantCall(asSource, xfer.PathAbort, `{"ids":["`+id.String()+`"]}`)
		require.Equal(t, http.StatusOK, status, raw)
	})

	t.Run("a transfer past the exposure cap is refused at prepare and aborted", func(t *testing.T) {
		first := p.send(p.bob, 30*avt)
		p.waitStatus(first.ID, "committed", 30*time.Second)
		in, _ := balance(t, p.dst, ledgerstore.TransitAccount(p.srcReg.ID))
		require.Equal(t, -30*avt, in)

		x := p.send(p.bob, 30*avt) // 30 + 30 > 50
		done := p.waitStatus(x.ID, "aborted", 30*time.Second)
		require.Contains(t, done.Reason, "exposure cap")
		_, hold := p.senderView(done)
		require.Equal(t, "voided", hold)
		in, _ = balance(t, p.dst, ledgerstore.TransitAccount(p.srcReg.ID))
		require.Equal(t, -30*avt, in, "nothing more credited")
		require.Equal(t, 1.0, nodeMetric(t, p.dst, "xfer_exposure_refused_total", "peer", p.srcReg.ID))
		require.Equal(t, float64(30*avt), nodeMetric(t, p.dst, "xfer_exposure_units", "peer", p.srcReg.ID))
		require.Equal(t, float64(50*avt), nodeMetric(t, p.dst, "xfer_exposure_cap_units", "peer", p.srcReg.ID))
	})

	t.Run("a commit past the exposure cap is refused and counted", func(t *testing.T) {
		// 15 fits under 50 with 30 credited: prepared.
		id := uuid.New()
		status, _, raw := p.participantCall(asSource, xfer.PathPrepare, p.prepareBody(id, 15*avt))
		require.Equal(t, http.StatusOK, status, raw)
		require.Contains(t, raw, `"status":"prepared"`)

		// The operator lowers the cap to 40 and restarts the target.
		p.dst.Stop(ctx)
		p.dstOpts.PeerSettings.ExposureCapUnits = 40 * avt
		p.dst, err = node.Start(ctx, p.dstOpts)
		require.NoError(t, err)
		t.Cleanup(func() { p.dst.Stop(context.Background()) })
		require.NoError(t, p.src.ConnectPeer(ctx, p.dstReg.ID, p.dst.MTLSURL()))

		status, code, raw := p.participantCall(asSource, xfer.PathCommit, p.prepareBody(id, 15*avt))
		require.Equal(t, http.StatusUnprocessableEntity, status, raw)
		require.Equal(t, "exposure_cap_exceeded", code)
		require.Contains(t, raw, p.srcReg.ID)
		require.Equal(t, "prepared", p.prepareStatus(id), "nothing credited, the prepare stays open")
		in, _ := balance(t, p.dst, ledgerstore.TransitAccount(p.srcReg.ID))
		require.Equal(t, -30*avt, in)
		require.Equal(t, 1.0, nodeMetric(t, p.dst, "xfer_exposure_refused_total", "peer", p.srcReg.ID))
		require.Equal(t, float64(40*avt), nodeMetric(t, p.dst, "xfer_exposure_cap_units", "peer", p.srcReg.ID))

		// The coordinator never decided it: the abort closes it.
		status, _, raw = p.participantCall(asSource, xfer.PathAbort, `{"ids":["`+id.String()+`"]}`)
		require.Equal(t, http.StatusOK, status, raw)
		require.Equal(t, "aborted", p.prepareStatus(id))
	})
}
