package node

import (
	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api/eventstoreapi"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ui"
)

// mountUI serves the live monitor page on every node and, on the node
// hosting the frame's EventStore, the event stream it reads.
func (n *Node) mountUI(e *gin.Engine, v1 *gin.RouterGroup) {
	ui.Mount(e)
	if pool := n.Pools[db.RoleEventStore]; pool != nil {
		(&eventstoreapi.Stream{Pool: pool}).Mount(v1)
	}
}
