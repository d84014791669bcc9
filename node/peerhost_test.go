package node

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPeerHost: by name, a peer is dialled at its registry ID whatever
// this node listens on; otherwise at this node's listen host, loopback for
// a wildcard.
func TestPeerHost(t *testing.T) {
	for _, c := range []struct {
		listen string
		byName bool
		want   string
	}{
		{"127.0.0.1", false, "127.0.0.1"},
		{"10.1.2.3", false, "10.1.2.3"},
		{"0.0.0.0", false, "127.0.0.1"},
		{"::", false, "127.0.0.1"},
		{"0.0.0.0", true, "alpha-op1"},
		{"10.1.2.3", true, "alpha-op1"},
	} {
		n := &Node{opts: Options{ListenHost: c.listen, PeerHostsByName: c.byName}}
		require.Equal(t, c.want, n.peerHost("alpha-op1"), "%+v", c)
	}
}
