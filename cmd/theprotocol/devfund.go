package main

import (
	"context"
	"log/slog"

	"github.com/theprotocol-dev/theprotocol/node"
)

// fundOperators has each frame's mainframe fund its operator registries'
// treasuries once (node.FundFrameOperators), so a developer who signs up on
// an operator registry can be granted the funds for its agents' bonds. A
// failure is logged, not fatal: the stack still runs, and an admin can
// allocate through POST /api/v1/admin/federation/allocations.
func fundOperators(ctx context.Context, nodes []*node.Node, log *slog.Logger) {
	for _, n := range nodes {
		if err := n.FundFrameOperators(ctx); err != nil {
			log.Warn("funding operator registries", "err", err)
		}
	}
}
