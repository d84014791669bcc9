// Package api is the Gin HTTP layer: router construction, the middleware
// every node shares (request IDs, body limit, recovery, access log, metrics,
// idempotency), strict JSON decoding, the one error→status mapping and the
// health endpoints. Handlers translate DTOs to domain calls; they never
// choose status codes for errors themselves.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

func init() { gin.SetMode(gin.ReleaseMode) }

// EngineOptions configures NewEngine.
type EngineOptions struct {
	Log          *slog.Logger
	Registry     *prometheus.Registry // the node's metrics registry, served at /metrics
	MaxBodyBytes int64
	Checks       []Check
	// TrustedProxies are the reverse proxies (IP addresses or CIDR ranges)
	// whose X-Forwarded-For names the client: gin.Context.ClientIP reads
	// it only on a connection from one of them. Empty: none is trusted and
	// ClientIP is the TCP peer address. config validates the entries;
	// NewEngine panics on one that does not parse (a wiring bug).
	TrustedProxies []string
}

// NewEngine returns a router with the shared middleware, /healthz, /readyz
// and /metrics mounted; roles add their routes under /api/v1.
func NewEngine(o EngineOptions) *gin.Engine {
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	// gin trusts every proxy unless told otherwise, which would let any
	// caller pick its own address (and rate-limit bucket) with a header.
	e.RemoteIPHeaders = []string{"X-Forwarded-For"}
	e.ForwardedByClientIP = len(o.TrustedProxies) > 0
	if err := e.SetTrustedProxies(o.TrustedProxies); err != nil {
		panic(fmt.Sprintf("api: trusted proxies: %v", err))
	}
	metrics := NewHTTPMetrics(o.Registry)
	e.Use(RequestID(), metrics.Middleware(), AccessLog(o.Log), Recover(o.Log), BodyLimit(o.MaxBodyBytes))
	e.NoRoute(func(c *gin.Context) {
		WriteError(c, apperr.New(apperr.NotFound, "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{Code: "method_not_allowed", Message: fmt.Sprintf("method %s not allowed on %s", c.Request.Method, c.Request.URL.Path)}})
	})
	RegisterHealth(e, o.Checks, o.Log)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry})))
	return e
}

// Server is an http.Server with the timeouts a public API needs.
type Server struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
}

// Listen binds addr (host:port; port 0 picks a free one) without serving yet,
// so callers learn the real address before anything connects.
func Listen(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return &Server{
		ln:  ln,
		log: log,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
		},
	}, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the http:// base URL of the bound address.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Serve blocks until Shutdown; it returns nil after a clean shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	return err
}
