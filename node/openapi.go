package node

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api/openapi"
)

// mountOpenAPI serves the OpenAPI document, built once from the operation
// table (api/openapi); the route-coverage test compares that table with
// the routes this engine has.
func (n *Node) mountOpenAPI(e *gin.Engine) error {
	n.engine = e
	doc, err := openapi.Document(Version)
	if err != nil {
		return fmt.Errorf("openapi document: %w", err)
	}
	e.GET("/api/v1/openapi.json", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, "application/json", doc)
	})
	return nil
}

// Routes lists the public API's routes ("GET /api/v1/node"), in Gin's
// path syntax.
func (n *Node) Routes() []string {
	var out []string
	for _, r := range n.engine.Routes() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}
