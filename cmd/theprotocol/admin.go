package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/node"
)

// runAdmin is `theprotocol admin sagas list|replay`: the operator's view
// of cross-registry settlement sagas, through a node's admin API (the same
// routes as GET /api/v1/admin/sagas and POST /api/v1/admin/sagas/{id}/replay).
//
//	theprotocol admin sagas list [-registry alpha-main] [-state CompensationFailed]
//	theprotocol admin sagas replay [-registry alpha-main] <workflow-id>
func runAdmin(ctx context.Context, args []string) error {
	if len(args) < 2 || args[0] != "sagas" || (args[1] != "list" && args[1] != "replay") {
		fmt.Fprintln(os.Stderr, "usage: theprotocol admin sagas list [-registry ID] [-state STATE]\n       theprotocol admin sagas replay [-registry ID] <workflow-id>")
		return flag.ErrHelp
	}
	sub := args[1]
	var registry, state, apiURL, creds string
	cfg, fs, err := parseFlags("admin sagas "+sub, args[2:], func(fs *flag.FlagSet) {
		fs.StringVar(&registry, "registry", "alpha-main", "the registry whose sagas to manage (the coordinator's)")
		fs.StringVar(&state, "state", "", "list only sagas in this SagaState (e.g. CompensationFailed)")
		fs.StringVar(&apiURL, "api", "", "the registry's API base URL (default: from the dev stack's endpoints.json)")
		fs.StringVar(&creds, "credentials", "", "admin client credentials file (default: the dev stack's)")
	})
	if err != nil {
		return err
	}
	if apiURL == "" {
		if apiURL, err = apiFromEndpoints(cfg.DataDir, registry); err != nil {
			return err
		}
	}
	if creds == "" {
		creds = node.AdminCredentialsFile(cfg.DataDir, registry)
	}
	c := adminClient{base: apiURL, http: &http.Client{Timeout: 15 * time.Second}}
	if err := c.login(ctx, creds); err != nil {
		return err
	}
	switch sub {
	case "list":
		return c.listSagas(ctx, state)
	default:
		if fs.NArg() != 1 {
			return errors.New("replay needs exactly one workflow ID")
		}
		return c.replay(ctx, fs.Arg(0))
	}
}

func apiFromEndpoints(dataDir, registry string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(dataDir, "endpoints.json"))
	if err != nil {
		return "", fmt.Errorf("no -api and no running dev stack (%w)", err)
	}
	var ep Endpoints
	if err := json.Unmarshal(raw, &ep); err != nil {
		return "", err
	}
	for _, n := range ep.Nodes {
		if n.Registry == registry {
			return n.APIURL, nil
		}
	}
	return "", fmt.Errorf("registry %q is not in endpoints.json", registry)
}

type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func (c *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	return json.Unmarshal(raw, out)
}

func (c *adminClient) login(ctx context.Context, credsFile string) error {
	raw, err := os.ReadFile(credsFile)
	if err != nil {
		return fmt.Errorf("admin credentials: %w", err)
	}
	var cr struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(raw, &cr); err != nil {
		return fmt.Errorf("admin credentials %s: %w", credsFile, err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/auth/token", map[string]string{
		"grant_type": "client_credentials", "client_id": cr.ClientID, "client_secret": cr.ClientSecret,
	}, &tok); err != nil {
		return err
	}
	c.token = tok.AccessToken
	return nil
}

func (c *adminClient) listSagas(ctx context.Context, state string) error {
	q := url.Values{"limit": {"100"}}
	if state != "" {
		q.Set("state", state)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW ID\tSAGA STATE\tSTATUS\tTARGET\tTRANSFERS\tSTARTED")
	for page := 0; page < 100; page++ {
		var out struct {
			Sagas []struct {
				WorkflowID     string    `json:"workflow_id"`
				SagaState      string    `json:"saga_state"`
				Status         string    `json:"status"`
				TargetRegistry string    `json:"target_registry"`
				TransferIDs    []string  `json:"transfer_ids"`
				StartedAt      time.Time `json:"started_at"`
			} `json:"sagas"`
			NextCursor string `json:"next_cursor"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/admin/sagas?"+q.Encode(), nil, &out); err != nil {
			return err
		}
		for _, s := range out.Sagas {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", s.WorkflowID, s.SagaState, s.Status, s.TargetRegistry, len(s.TransferIDs), s.StartedAt.Format(time.RFC3339))
		}
		if out.NextCursor == "" {
			break
		}
		q.Set("cursor", out.NextCursor)
	}
	return tw.Flush()
}

func (c *adminClient) replay(ctx context.Context, workflowID string) error {
	var out struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/admin/sagas/"+url.PathEscape(workflowID)+"/replay", map[string]any{}, &out); err != nil {
		return err
	}
	fmt.Printf("signalled %s to retry its compensation\n", out.WorkflowID)
	return nil
}
