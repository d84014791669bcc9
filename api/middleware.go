package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// HeaderRequestID carries the request ID in both directions.
const HeaderRequestID = "X-Request-ID"

type ctxKey int

const requestIDKey ctxKey = iota

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// RequestID accepts a sane X-Request-ID from the caller or makes one, puts
// it on the response and in the request context.
func RequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(HeaderRequestID)
		if !requestIDPattern.MatchString(id) {
			id = uuid.NewString()
		}
		c.Header(HeaderRequestID, id)
		c.Set("request_id", id)
		c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), requestIDKey, id))
		c.Next()
	}
}

// RequestIDFrom returns the request ID stored in ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// BodyLimit caps every request body at maxBytes; reading past it fails with
// *http.MaxBytesError, which DecodeJSON maps to 413.
func BodyLimit(maxBytes int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > maxBytes {
			WriteError(c, apperr.New(apperr.TooLarge, "request body larger than %d bytes", maxBytes))
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBytes)
		c.Next()
	}
}

// Recover turns a panic into a logged 500 with the standard error body.
func Recover(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				log.Error("panic in handler", "panic", fmt.Sprint(r), "route", c.FullPath(), "request_id", c.GetString("request_id"), "stack", string(debug.Stack()))
				if !c.Writer.Written() {
					WriteError(c, apperr.New(apperr.Internal, "internal error"))
				}
				c.Abort()
			}
		}()
		c.Next()
	}
}

// HTTPMetrics are the request counters and latency histograms of one API.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// NewHTTPMetrics registers the HTTP collectors in reg.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests by route template, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request latency by route template, method and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "api_errors_total",
			Help: "Error responses by error code.",
		}, []string{"code"}),
	}
	reg.MustRegister(m.requests, m.latency, m.errors)
	return m
}

// Middleware records every request; unmatched routes share one label so
// scanners cannot blow up the metric cardinality.
func (m *HTTPMetrics) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := strconv.Itoa(c.Writer.Status())
		m.requests.WithLabelValues(route, c.Request.Method, status).Inc()
		m.latency.WithLabelValues(route, c.Request.Method, status).Observe(time.Since(start).Seconds())
		for _, e := range c.Errors {
			m.errors.WithLabelValues(string(apperr.CodeOf(e.Err))).Inc()
		}
	}
}

// AccessLog logs each request at debug level, errors at warn, and internal
// errors (with their cause, which callers never see) at error level.
func AccessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		attrs := []any{
			"method", c.Request.Method,
			"route", c.FullPath(),
			"status", c.Writer.Status(),
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
			"request_id", c.GetString("request_id"),
		}
		switch {
		case len(c.Errors) > 0 && apperr.CodeOf(c.Errors.Last().Err) == apperr.Internal:
			log.Error("request failed", append(attrs, "error", c.Errors.Last().Err.Error())...)
		case c.Writer.Status() >= 500:
			log.Warn("request", append(attrs, "error", c.Errors.String())...)
		default:
			log.Debug("request", attrs...)
		}
	}
}
