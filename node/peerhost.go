package node

// peerHost is the host this node dials another node of its frame at, by
// that node's registry ID: the ID itself when the deployment names a host
// (or container) after each registry, else this node's own listen host
// (all of the frame on one machine), loopback for a wildcard address.
func (n *Node) peerHost(registryID string) string {
	if n.opts.PeerHostsByName {
		return registryID
	}
	switch h := n.opts.ListenHost; h {
	case "", "0.0.0.0", "::":
		return "127.0.0.1"
	default:
		return h
	}
}
