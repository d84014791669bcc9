package sim

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
)

// Target is the running topology the simulation drives: every node's API
// and, for the end-of-run checks, the Postgres cluster behind it. It is
// read from the endpoints file `theprotocol dev` writes.
type Target struct {
	// PostgresAdminURL reaches the cluster holding every node's databases
	// (the checks read the EventStore's log and the TEGs' transfer rows,
	// and receivers are opened on registries that cannot fund agents).
	PostgresAdminURL string
	Registries       []Registry
	// ControlURL is the dev stack's fault-injection endpoint ("" when the
	// stack has none; -chaos needs it).
	ControlURL string
}

// Registry is one node of the topology.
type Registry struct {
	Frame     string   `json:"frame"`
	ID        string   `json:"registry"`
	Mainframe bool     `json:"mainframe"`
	Roles     []string `json:"roles"`
	APIURL    string   `json:"api_url"`
	// AdminCredentials is the dev admin client's file (client_id,
	// client_secret), written by the dev stack.
	AdminCredentials string            `json:"admin_credentials_file"`
	Databases        map[string]string `json:"databases"`
}

// HasRole reports whether the node runs role.
func (r Registry) HasRole(role string) bool { return slices.Contains(r.Roles, role) }

// endpointsFile is the part of the dev stack's endpoints.json the
// simulation reads.
type endpointsFile struct {
	Nodes    []Registry `json:"nodes"`
	Postgres struct {
		AdminURL string `json:"admin_url"`
	} `json:"postgres"`
	ControlURL string `json:"control_url"`
}

// LoadEndpoints reads a dev stack's endpoints.json and checks it is a
// local target.
func LoadEndpoints(path string) (Target, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Target{}, fmt.Errorf("read the dev stack's endpoints (is `theprotocol dev` running?): %w", err)
	}
	var ep endpointsFile
	if err := json.Unmarshal(raw, &ep); err != nil {
		return Target{}, fmt.Errorf("parse %s: %w", path, err)
	}
	t := Target{PostgresAdminURL: ep.Postgres.AdminURL, Registries: ep.Nodes, ControlURL: ep.ControlURL}
	return t, t.Validate()
}

// Validate refuses anything but a loopback target: the simulation moves
// money, creates identities by the hundred and (with -chaos) stops
// services, so it must never be pointed at a shared or production stack.
func (t Target) Validate() error {
	if len(t.Registries) == 0 {
		return fmt.Errorf("the target has no node")
	}
	if err := loopback("postgres", t.PostgresAdminURL); err != nil {
		return err
	}
	if t.ControlURL != "" {
		if err := loopback("dev control", t.ControlURL); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, r := range t.Registries {
		if r.ID == "" || r.Frame == "" {
			return fmt.Errorf("a node without registry or frame id")
		}
		if seen[r.ID] {
			return fmt.Errorf("registry %s listed twice", r.ID)
		}
		seen[r.ID] = true
		if err := loopback(r.ID, r.APIURL); err != nil {
			return err
		}
	}
	return nil
}

func loopback(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s: %q is not a URL", what, raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip == nil || !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		return fmt.Errorf("%s: %s is not 127.0.0.1: the simulation only drives a local dev stack", what, raw)
	}
	return nil
}

// frames lists the frame IDs in topology order.
func (t Target) frames() []string {
	var out []string
	for _, r := range t.Registries {
		if !slices.Contains(out, r.Frame) {
			out = append(out, r.Frame)
		}
	}
	return out
}

// eventStore is the node holding frame's EventStore.
func (t Target) eventStore(frame string) (Registry, bool) {
	for _, r := range t.Registries {
		if r.Frame == frame && r.HasRole("eventstore") {
			return r, true
		}
	}
	return Registry{}, false
}

// dbURL is the admin URL pointed at database name.
func (t Target) dbURL(name string) (string, error) {
	u, err := url.Parse(t.PostgresAdminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}
