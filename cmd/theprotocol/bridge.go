package main

import (
	"context"

	"github.com/theprotocol-dev/theprotocol/node"
)

// bridgeFrames federates every pair of frames' mainframes started in this
// process (their trust bundles are exchanged in process, standing in for
// the out-of-band exchange between operators) and makes them bridge peers.
func bridgeFrames(ctx context.Context, nodes []*node.Node) error {
	var mains []*node.Node
	for _, n := range nodes {
		if n.Bridge != nil && n.MTLSURL() != "" {
			mains = append(mains, n)
		}
	}
	for i := range mains {
		for j := i + 1; j < len(mains); j++ {
			if err := node.ConnectFrames(ctx, mains[i], mains[j]); err != nil {
				return err
			}
		}
	}
	return nil
}
