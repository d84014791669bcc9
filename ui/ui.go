// Package ui is the live web page a node serves at /ui: the frame's public
// invariant monitor (supply audit terms and delta, reconciliation per
// registry), the event log as it grows (server-sent events from the
// EventStore) and the trace of the newest paid call. Plain HTML and
// JavaScript embedded in the binary: no build step, nothing fetched from
// elsewhere, so the page works on an isolated network and cannot be
// altered by a third-party host.
package ui

import (
	"embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

//go:embed static/index.html static/app.js
var static embed.FS

// Mount registers GET /ui and GET /ui/app.js on e.
func Mount(e *gin.Engine) {
	serve := func(name, contentType string) gin.HandlerFunc {
		body, err := static.ReadFile("static/" + name)
		if err != nil {
			panic("ui: embedded " + name + " missing: " + err.Error())
		}
		return func(c *gin.Context) {
			h := c.Writer.Header()
			// The page runs only its own script and talks only to this node.
			h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Cache-Control", "no-cache")
			c.Data(http.StatusOK, contentType, body)
		}
	}
	e.GET("/ui", serve("index.html", "text/html; charset=utf-8"))
	e.GET("/ui/app.js", serve("app.js", "text/javascript; charset=utf-8"))
}
