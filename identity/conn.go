package identity

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// ConnTracker remembers which peer SPIFFE ID owns each live server
// connection so that revoking a peer can also close its established
// (keep-alive) connections, not only refuse its next handshake. Plug
// ConnState into http.Server.ConnState and call CloseID from
// MemPeerSet.OnRemove. Safe for concurrent use.
type ConnTracker struct {
	mu    sync.Mutex
	conns map[net.Conn]spiffeid.ID
}

// NewConnTracker returns an empty tracker.
func NewConnTracker() *ConnTracker {
	return &ConnTracker{conns: map[net.Conn]spiffeid.ID{}}
}

// ConnState is an http.Server.ConnState hook. A connection is recorded when
// it first becomes active (its handshake is complete by then).
func (t *ConnTracker) ConnState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateActive:
		tc, ok := c.(*tls.Conn)
		if !ok {
			return
		}
		cs := tc.ConnectionState()
		id, err := PeerID(&cs)
		if err != nil {
			return
		}
		t.mu.Lock()
		t.conns[c] = id
		t.mu.Unlock()
	case http.StateClosed, http.StateHijacked:
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
	}
}

// CloseID closes every tracked connection of id and returns how many.
func (t *ConnTracker) CloseID(id spiffeid.ID) int {
	t.mu.Lock()
	var victims []net.Conn
	for c, cid := range t.conns {
		if cid == id {
			victims = append(victims, c)
			delete(t.conns, c)
		}
	}
	t.mu.Unlock()
	for _, c := range victims {
		_ = c.Close()
	}
	return len(victims)
}
