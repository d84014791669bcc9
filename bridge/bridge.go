// Package bridge carries value between frames (SPEC §6.2): the sending
// frame escrows its native currency in bridge:<target>'s locked_bridge
// bucket and the target frame mints wrapped:<source> tokens against its
// issuance account; a redemption burns the wrapped tokens on the target
// and the origin releases from its escrow. Each operation is one Temporal
// workflow on the frame that started it (workflows/bridge.go); the other
// frame's mainframe TEG applies its leg through the bridge participant API
// on its mTLS listener, idempotent by transfer ID.
//
// Trust: a participant call is admitted only from the mainframe TEG of a
// configured peer frame, authenticated by an SVID of that frame's trust
// domain verified against the federated bundle this node pinned for it.
// A caller of this node's own trust domain (a TEG of the same frame) is
// refused: moving value within a frame is the cross-registry saga's job.
package bridge

import (
	"sort"
	"strings"
	"sync"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Participant API paths (mTLS listener).
const (
	PathApply      = "/internal/v1/bridge/apply"
	PathApplyBatch = "/internal/v1/bridge/apply-batch"
	PathStatus     = "/internal/v1/bridge/status"
	PathPosition   = "/internal/v1/bridge/position"
)

// Peer is another frame this frame bridges with.
type Peer struct {
	Frame       string
	TrustDomain spiffeid.TrustDomain
	// TEG is the peer frame's mainframe TEG, the only caller admitted
	// from that frame and the only server this node talks to there.
	TEG spiffeid.ID
	// BaseURL is its mTLS listener (https://host:port).
	BaseURL  string
	Currency string
}

// Directory is the set of peer frames. Safe for concurrent use.
type Directory struct {
	mu    sync.RWMutex
	peers map[string]Peer
}

// NewDirectory returns an empty directory.
func NewDirectory() *Directory { return &Directory{peers: map[string]Peer{}} }

// Set adds or replaces a peer frame.
func (d *Directory) Set(p Peer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.peers[p.Frame] = p
}

// Get returns peer frame f.
func (d *Directory) Get(f string) (Peer, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	p, ok := d.peers[f]
	return p, ok
}

// List returns every peer frame, sorted.
func (d *Directory) List() []Peer {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]Peer, 0, len(d.peers))
	for _, p := range d.peers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Frame < out[j].Frame })
	return out
}

// Refusal reasons of AdmitCaller.
const (
	RefusedSameFrame    = "same_frame"
	RefusedUnknownFrame = "unknown_frame"
	RefusedNotMainTEG   = "not_mainframe_teg"
)

// AdmitCaller decides whether caller (a verified SPIFFE ID) may call the
// bridge participant API of a node in trust domain own, and for which
// peer frame. It returns the frame, or a refusal reason.
func AdmitCaller(own spiffeid.TrustDomain, caller spiffeid.ID, peers *Directory) (string, string) {
	if caller.TrustDomain() == own {
		return "", RefusedSameFrame
	}
	for _, p := range peers.List() {
		if p.TrustDomain != caller.TrustDomain() {
			continue
		}
		if caller != p.TEG {
			return "", RefusedNotMainTEG
		}
		return p.Frame, ""
	}
	return "", RefusedUnknownFrame
}

func refusalMessage(caller spiffeid.ID, reason string) string {
	switch reason {
	case RefusedSameFrame:
		return "caller " + caller.String() + " is of this frame; the bridge admits only other frames' mainframe TEGs"
	case RefusedNotMainTEG:
		return "caller " + caller.String() + " is not its frame's mainframe TEG"
	}
	return "caller " + caller.String() + " is of no frame this node bridges with"
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
