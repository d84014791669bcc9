package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/reputation"
)

// runReputation: `reputation verify [-url URL] <run ID|latest>` fetches a
// run's parameters, digests and graph from the public API of the node
// hosting the frame's EventStore, recomputes the scores and compares the
// digest with the published one (exit 1 when they differ).
func runReputation(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: theprotocol reputation verify [-url URL] <run ID|latest>")
	}
	fs := flag.NewFlagSet("reputation verify", flag.ContinueOnError)
	base := fs.String("url", config.Env("THEPROTOCOL_EVENTSTORE_URL", "http://127.0.0.1:8101"), "API base URL of the node hosting the frame's EventStore (env THEPROTOCOL_EVENTSTORE_URL)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: theprotocol reputation verify [-url URL] <run ID|latest>")
	}
	res, err := verifyRun(ctx, &http.Client{Timeout: time.Minute}, *base, fs.Arg(0))
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(res); err != nil {
		return err
	}
	if !res.Match {
		return exitError(1)
	}
	return nil
}

// verifyResult is what `reputation verify` prints.
type verifyResult struct {
	RunID      string `json:"run_id"`
	Published  string `json:"published_digest"`
	Recomputed string `json:"recomputed_digest"`
	Match      bool   `json:"match"`
}

func verifyRun(ctx context.Context, c *http.Client, base, runID string) (verifyResult, error) {
	base = strings.TrimRight(base, "/")
	var run struct {
		RunID       string            `json:"run_id"`
		Digest      string            `json:"digest"`
		InputDigest string            `json:"input_digest"`
		Params      reputation.Params `json:"params"`
	}
	body, err := fetch(ctx, c, base+"/api/v1/reputation/runs/"+url.PathEscape(runID))
	if err != nil {
		return verifyResult{}, err
	}
	if err := json.Unmarshal(body, &run); err != nil || run.RunID == "" {
		return verifyResult{}, fmt.Errorf("run %s: malformed answer", runID)
	}
	graph, err := fetch(ctx, c, base+"/api/v1/reputation/runs/"+url.PathEscape(run.RunID)+"/graph")
	if err != nil {
		return verifyResult{}, err
	}
	got, ok, err := reputation.Verify(graph, run.Params, run.InputDigest, run.Digest)
	if err != nil {
		return verifyResult{}, fmt.Errorf("run %s: %w", run.RunID, err)
	}
	return verifyResult{RunID: run.RunID, Published: run.Digest, Recomputed: got, Match: ok}, nil
}

func fetch(ctx context.Context, c *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d: %.300s", u, resp.StatusCode, b)
	}
	return b, nil
}
