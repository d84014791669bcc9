// Package reputationapi serves trust scores and reputation runs from the
// node hosting the frame's EventStore. Everything here is public: scores
// and runs are published so that anyone can check them.
package reputationapi

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/reputation"
)

// Handler serves one frame's reputation.
type Handler struct {
	Store *ingest.ReputationStore
}

// Mount registers the routes under v1.
func (h *Handler) Mount(v1 *gin.RouterGroup) {
	r := v1.Group("/reputation")
	r.GET("/:did/trust-score", h.trustScore)
	r.GET("/runs/:id", h.run)
	r.GET("/runs/:id/graph", h.graph)
}

// TrustScore is GET /api/v1/reputation/{did}/trust-score.
type TrustScore struct {
	AgentDID   string    `json:"agent_did"`
	Score      float64   `json:"score"`     // global trust; all agents' sum to 1
	TrustBps   int64     `json:"trust_bps"` // share of its trust others gave it, 0..10000
	Rank       int       `json:"rank"`
	Percentile float64   `json:"percentile"`
	Agents     int       `json:"agents"`
	RunID      string    `json:"run_id"`
	ComputedAt time.Time `json:"computed_at"`
}

// Run is GET /api/v1/reputation/runs/{id}: what a run computed from and
// what it published. The graph is at .../graph (zstd-compressed canonical
// encoding, whose SHA-256 before compression is input_digest).
type Run struct {
	RunID        string            `json:"run_id"`
	PrevRunID    string            `json:"prev_run_id"`
	Seq          int64             `json:"seq"`
	ComputedAt   time.Time         `json:"computed_at"`
	Params       reputation.Params `json:"params"`
	InputDigest  string            `json:"input_digest"`
	Digest       string            `json:"digest"`
	Agents       int               `json:"agents"`
	Edges        int               `json:"edges"`
	Iterations   int               `json:"iterations"`
	Converged    bool              `json:"converged"`
	Delta        float64           `json:"delta"`
	EventsMerged int64             `json:"events_merged"`
	HighWater    HighWater         `json:"high_water_mark"`
	GraphURL     string            `json:"graph_url"`
}

// HighWater is where the run stopped in the event log.
type HighWater struct {
	SegmentsFrom int64   `json:"segments_from"`
	SegmentsDone []int64 `json:"segments_done"`
	SegmentGaps  []int64 `json:"segment_gaps"`
}

func validDID(s string) bool {
	return strings.HasPrefix(s, "did:") && len(s) <= 512 && !strings.ContainsAny(s, " \t\r\n/")
}

func validRunID(s string) bool {
	return s != "" && len(s) <= 256 && !strings.ContainsAny(s, " \t\r\n")
}

func (h *Handler) trustScore(c *gin.Context) {
	did := c.Param("did")
	if !validDID(did) {
		api.WriteError(c, apperr.New(apperr.Invalid, "%q is not an agent DID", did))
		return
	}
	sc, run, err := h.Store.Score(c.Request.Context(), did)
	if err != nil {
		api.WriteError(c, apperr.WrapUncoded(err, apperr.Unavailable, "trust scores unavailable; retry later"))
		return
	}
	c.JSON(http.StatusOK, TrustScore{AgentDID: did, Score: sc.Score, TrustBps: sc.TrustBps, Rank: sc.Rank, Percentile: sc.Percentile,
		Agents: run.Agents, RunID: run.RunID, ComputedAt: run.ComputedAt.UTC()})
}

func (h *Handler) load(c *gin.Context, withGraph bool) (ingest.ReputationRunRecord, bool) {
	id := c.Param("id")
	if !validRunID(id) {
		api.WriteError(c, apperr.New(apperr.Invalid, "%q is not a run ID", id))
		return ingest.ReputationRunRecord{}, false
	}
	var r ingest.ReputationRunRecord
	var err error
	if id == "latest" {
		r, err = h.Store.LatestRun(c.Request.Context(), withGraph)
	} else {
		r, err = h.Store.Run(c.Request.Context(), id, withGraph)
	}
	if err != nil {
		api.WriteError(c, apperr.WrapUncoded(err, apperr.Unavailable, "reputation runs unavailable; retry later"))
		return r, false
	}
	return r, true
}

func (h *Handler) run(c *gin.Context) {
	r, ok := h.load(c, false)
	if !ok {
		return
	}
	var p reputation.Params
	if err := json.Unmarshal(r.Params, &p); err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Internal, "stored run parameters"))
		return
	}
	c.JSON(http.StatusOK, Run{
		RunID: r.RunID, PrevRunID: r.PrevRunID, Seq: r.Seq, ComputedAt: r.ComputedAt.UTC(), Params: p,
		InputDigest: hex.EncodeToString(r.InputDigest), Digest: hex.EncodeToString(r.Digest),
		Agents: r.Agents, Edges: r.Edges, Iterations: r.Iterations, Converged: r.Converged, Delta: r.Delta,
		EventsMerged: r.EventsMerged, HighWater: HighWater{SegmentsFrom: r.Scan.From, SegmentsDone: r.Scan.Done, SegmentGaps: r.Scan.Gaps},
		GraphURL: "/api/v1/reputation/runs/" + r.RunID + "/graph",
	})
}

func (h *Handler) graph(c *gin.Context) {
	r, ok := h.load(c, true)
	if !ok {
		return
	}
	c.Header("X-Input-Digest", hex.EncodeToString(r.InputDigest))
	c.Data(http.StatusOK, "application/zstd", r.Graph)
}
