package reputation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// HTTPScorer reads trust scores from the API of the node hosting the
// frame's EventStore (GET /api/v1/reputation/{did}/trust-score), for the
// bonds of registries on other nodes. An agent without a score scores 0.
type HTTPScorer struct {
	BaseURL string
	Client  *http.Client // default: 10 s timeout
}

// TrustScore implements bonds.TrustScorer. The answer crosses a process
// boundary: it must name the agent asked about and hold basis points in
// range, or it is refused (and the bond check retried).
func (h *HTTPScorer) TrustScore(ctx context.Context, agentDID string) (int64, error) {
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	u := strings.TrimRight(h.BaseURL, "/") + "/api/v1/reputation/" + url.PathEscape(agentDID) + "/trust-score"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, apperr.Wrap(err, apperr.Unavailable, "trust scores unavailable")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, apperr.Wrap(err, apperr.Unavailable, "trust scores unavailable")
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return 0, nil
	default:
		return 0, apperr.New(apperr.Unavailable, "trust score of %s: HTTP %d", agentDID, resp.StatusCode)
	}
	var ts struct {
		AgentDID string `json:"agent_did"`
		TrustBps *int64 `json:"trust_bps"`
	}
	if err := json.Unmarshal(body, &ts); err != nil || ts.TrustBps == nil || ts.AgentDID != agentDID || *ts.TrustBps < 0 || *ts.TrustBps > 10000 {
		return 0, apperr.New(apperr.Unavailable, "trust score of %s: malformed answer %s", agentDID, fmt.Sprintf("%.200q", body))
	}
	return *ts.TrustBps, nil
}
