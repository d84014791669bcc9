package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/bridge"
)

// FrameCardFile is where a bridging mainframe writes its own frame card,
// under its data directory.
const FrameCardFile = "bridge/frame-card.json"

// FrameCard is what another frame needs to bridge with this one: who its
// mainframe TEG is, where its listeners are and the trust bundle that
// authenticates the first fetch from its bundle endpoint. Its operator
// hands the file to the peer frame's operator (out of band, like any
// first SPIFFE bundle), who lists it in -bridge-peer-cards.
type FrameCard struct {
	Frame       string          `json:"frame"`
	TrustDomain string          `json:"trust_domain"`
	Currency    string          `json:"currency"`
	Registry    string          `json:"registry"`
	MTLSURL     string          `json:"mtls_url"`
	BundleURL   string          `json:"bundle_url"`
	Bundle      json.RawMessage `json:"bundle"`
}

var (
	cardFrame    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	cardCurrency = regexp.MustCompile(`^[A-Z][A-Z0-9]{1,15}$`)
	cardRegistry = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// ReadFrameCard reads and checks a frame card. Nothing in it is trusted
// beyond the bundle an operator chose to pin: the peer must still prove
// it is the card's mainframe TEG with an SVID that bundle verifies.
func ReadFrameCard(path string) (FramePeer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return FramePeer{}, err
	}
	var c FrameCard
	if err := json.Unmarshal(raw, &c); err != nil {
		return FramePeer{}, fmt.Errorf("frame card %s: %w", path, err)
	}
	bad := func(what string) (FramePeer, error) {
		return FramePeer{}, fmt.Errorf("frame card %s: %s", path, what)
	}
	if !cardFrame.MatchString(c.Frame) {
		return bad("frame must be lower-case letters, digits and dashes")
	}
	if !cardCurrency.MatchString(c.Currency) {
		return bad("currency must be an upper-case code such as AVT")
	}
	if !cardRegistry.MatchString(c.Registry) {
		return bad("registry must be lower-case letters, digits and dashes")
	}
	for _, u := range []string{c.MTLSURL, c.BundleURL} {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "https" || pu.Host == "" {
			return bad("mtls_url and bundle_url must be https URLs")
		}
	}
	td, err := spiffeid.TrustDomainFromString(c.TrustDomain)
	if err != nil {
		return bad("trust_domain: " + err.Error())
	}
	b, err := spiffebundle.Parse(td, c.Bundle)
	if err != nil {
		return bad("bundle: " + err.Error())
	}
	if len(b.X509Authorities()) == 0 {
		return bad("bundle holds no X.509 authority")
	}
	return FramePeer{Frame: c.Frame, TrustDomain: td.Name(), Currency: c.Currency, Registry: c.Registry,
		MTLSURL: c.MTLSURL, BundleURL: c.BundleURL, Bundle: b}, nil
}

// loadBridgePeers fills the peer directory from the frames recorded by
// earlier connections (their bundles are pinned by the peer store's own
// load).
func (n *Node) loadBridgePeers(ctx context.Context) error {
	frames, err := n.Ledger.BridgePeerFrames(ctx)
	if err != nil {
		return fmt.Errorf("load bridge peer frames: %w", err)
	}
	for _, f := range frames {
		td, err := spiffeid.TrustDomainFromString(f.TrustDomain)
		if err != nil {
			return fmt.Errorf("bridge peer frame %s: %w", f.Frame, err)
		}
		teg, err := spiffeid.FromString(f.TEGID)
		if err != nil || teg.TrustDomain() != td {
			return fmt.Errorf("bridge peer frame %s: TEG %q is not of %s", f.Frame, f.TEGID, td)
		}
		n.Bridge.Peers.Set(bridge.Peer{Frame: f.Frame, TrustDomain: td, TEG: teg, BaseURL: f.BaseURL, Currency: f.Currency})
	}
	return nil
}

// writeFrameCard writes this frame's card under the data directory.
func (n *Node) writeFrameCard() error {
	if n.opts.DataDir == "" || n.bundleURL == "" || n.mtlsURL == "" {
		return nil
	}
	b, err := n.FrameBundle()
	if err != nil {
		return err
	}
	raw, err := b.Marshal()
	if err != nil {
		return err
	}
	card := FrameCard{Frame: n.opts.Frame.ID, TrustDomain: n.opts.Frame.TrustDomain, Currency: n.opts.Frame.Currency,
		Registry: n.opts.Registry.ID, MTLSURL: advertise(n.mtlsURL, n.opts.BridgeSettings.AdvertiseHost),
		BundleURL: advertise(n.bundleURL, n.opts.BridgeSettings.AdvertiseHost), Bundle: raw}
	out, err := json.MarshalIndent(card, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(n.opts.DataDir, FrameCardFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Written whole, then renamed: a peer never reads half a card.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// advertise replaces u's host by host (when set), keeping the port.
func advertise(u, host string) string {
	if host == "" {
		return u
	}
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	pu.Host = net.JoinHostPort(host, pu.Port())
	return pu.String()
}

// connectFrameCards connects the configured peer frames. A peer that does
// not answer yet is retried in the background until it does (or the node
// stops); what earlier runs recorded is admitted meanwhile.
func (n *Node) connectFrameCards(ctx context.Context) error {
	var later []FramePeer
	for _, path := range n.opts.BridgeSettings.PeerCardList() {
		p, err := ReadFrameCard(path)
		if err != nil {
			return err
		}
		if p.Frame == n.opts.Frame.ID {
			continue // one list can serve every frame: its own card is skipped
		}
		if err := n.connectFrameSoon(ctx, p, 5*time.Second); err != nil {
			n.log.Warn("bridge peer frame not reachable yet; retrying", "frame", p.Frame, "err", err)
			later = append(later, p)
		}
	}
	if len(later) == 0 {
		return nil
	}
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for len(later) > 0 {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			left := later[:0]
			for _, p := range later {
				if err := n.connectFrameSoon(ctx, p, 5*time.Second); err != nil {
					left = append(left, p)
					continue
				}
				n.log.Info("bridge peer frame connected", "frame", p.Frame)
			}
			later = left
		}
	}()
	return nil
}

func (n *Node) connectFrameSoon(ctx context.Context, p FramePeer, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return n.ConnectFrame(ctx, p)
}
