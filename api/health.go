package api

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// Check is one dependency probe for /readyz.
type Check struct {
	Name string // postgres, temporal, kafka
	Fn   func(ctx context.Context) error
}

// ReadyTimeout bounds one /readyz evaluation.
const ReadyTimeout = 2 * time.Second

// readyBody is /readyz's response: every check's result, and on failure the
// standard error body naming the failed dependencies.
type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	Error  *ErrorDetail      `json:"error,omitempty"`
}

// RegisterHealth mounts /healthz (the process is up) and /readyz (every
// check passes within ReadyTimeout; 503 naming the failures otherwise).
//
// /readyz is unauthenticated, so a failure is reported by the check's name
// only: a driver's error text carries hosts, ports, user and database names
// (and a Kafka or Temporal error the broker or frontend address), which an
// outsider has no business reading. The full error goes to log.
func RegisterHealth(r gin.IRoutes, checks []Check, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r.GET("/healthz", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	r.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), ReadyTimeout)
		defer cancel()
		body := readyBody{Status: "ready", Checks: map[string]string{}}
		var mu sync.Mutex
		var wg sync.WaitGroup
		var failed []string
		for _, chk := range checks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := chk.Fn(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					log.Warn("readiness check failed", "check", chk.Name, "err", err, "request_id", c.GetString("request_id"))
					body.Checks[chk.Name] = "error"
					failed = append(failed, chk.Name)
					return
				}
				body.Checks[chk.Name] = "ok"
			}()
		}
		wg.Wait()
		if len(failed) > 0 {
			sort.Strings(failed)
			body.Status = "unavailable"
			body.Error = &ErrorDetail{Code: apperr.Unavailable, Message: "not ready: " + strings.Join(failed, ", ") + " unreachable"}
			c.JSON(http.StatusServiceUnavailable, body)
			return
		}
		c.JSON(http.StatusOK, body)
	})
}
