package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Fault is one fault the dev stack's control endpoint injects.
type Fault struct {
	Kind     string        // node, kafka, postgres
	Registry string        // node: which one restarts
	For      time.Duration // kafka, postgres: how long the service stays down
}

func (f Fault) String() string {
	if f.Kind == "node" {
		return "restart node " + f.Registry
	}
	return fmt.Sprintf("stop %s for %s", f.Kind, f.For)
}

// ChaosHelp describes the -chaos syntax.
const ChaosHelp = "node[=<registry>] (restart a node; default the first frame's EventStore node), kafka[=<duration>] (stop the embedded broker, default 5s), postgres[=<duration>] (stop the embedded cluster, default 3s); or all"

// ParseChaos reads "node,kafka=5s,postgres" for target.
func ParseChaos(spec string, t Target) ([]Fault, error) {
	if t.ControlURL == "" {
		return nil, fmt.Errorf("chaos: the target has no control_url: only `theprotocol dev` serves one")
	}
	if strings.TrimSpace(spec) == "all" {
		spec = "node,kafka,postgres"
	}
	var out []Fault
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kind, arg, _ := strings.Cut(part, "=")
		f := Fault{Kind: kind}
		switch kind {
		case "node":
			f.Registry = arg
			if f.Registry == "" {
				es, ok := t.eventStore(t.frames()[0])
				if !ok {
					return nil, fmt.Errorf("chaos: no EventStore node to restart by default")
				}
				f.Registry = es.ID
			}
			found := false
			for _, r := range t.Registries {
				found = found || r.ID == f.Registry
			}
			if !found {
				return nil, fmt.Errorf("chaos: no node of registry %q", f.Registry)
			}
		case "kafka", "postgres":
			f.For = 5 * time.Second
			if kind == "postgres" {
				f.For = 3 * time.Second
			}
			if arg != "" {
				d, err := time.ParseDuration(arg)
				if err != nil || d <= 0 || d > time.Minute {
					return nil, fmt.Errorf("chaos: %q: the duration must be in (0, 1m]", part)
				}
				f.For = d
			}
		default:
			return nil, fmt.Errorf("chaos: unknown fault %q (%s)", part, ChaosHelp)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("chaos: no fault in %q", spec)
	}
	return out, nil
}

// Chaos returns a Config.Chaos injecting faults one after the other,
// spread evenly over duration (the first after 1/(n+1) of it), through
// the control endpoint at controlURL.
func Chaos(controlURL string, faults []Fault, duration time.Duration) func(context.Context, *slog.Logger) error {
	return func(ctx context.Context, log *slog.Logger) error {
		hc := &http.Client{Timeout: 3 * time.Minute}
		start := time.Now()
		for i, f := range faults {
			sleep(ctx, time.Until(start.Add(duration*time.Duration(i+1)/time.Duration(len(faults)+1))))
			if ctx.Err() != nil {
				return ctx.Err()
			}
			path := "/chaos/restart-node?registry=" + url.QueryEscape(f.Registry)
			if f.Kind != "node" {
				path = "/chaos/stop-" + f.Kind + "?for=" + url.QueryEscape(f.For.String())
			}
			log.Warn("chaos: "+f.String(), "at", time.Since(start).Round(time.Millisecond))
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, controlURL+path, nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %d %s", f, resp.StatusCode, raw)
			}
			var ok struct {
				Took string `json:"took"`
			}
			_ = json.Unmarshal(raw, &ok)
			log.Warn("chaos: done: "+f.String(), "took", ok.Took)
		}
		return nil
	}
}
