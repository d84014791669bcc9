package config

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Roles a node can host. A laptop runs every role in one process; production
// splits them.
const (
	RoleRegistry   = "registry"
	RoleTEG        = "teg"
	RoleEventStore = "eventstore"
	RoleWorker     = "worker"
)

// Topology names the frames and registries of a deployment.
type Topology struct {
	Frames []Frame `json:"frames"`
}

// Frame is a sovereign trust domain with its own currency, supply, EventStore
// and Kafka topic <id>.events.
type Frame struct {
	ID          string `json:"id"`
	TrustDomain string `json:"trust_domain"`
	Currency    string `json:"currency"`
	// Genesis marks the genesis frame (the one whose native currency is AVT).
	Genesis bool `json:"genesis"`
	// GenesisSupplyUnits is minted once to the mainframe treasury, in base
	// units (1 AVT = 10^8).
	GenesisSupplyUnits int64      `json:"genesis_supply_units"`
	Registries         []Registry `json:"registries"`
}

// Registry is one operator's node: registry + TEG (+ the frame's EventStore
// on the mainframe) and a Temporal worker.
type Registry struct {
	ID        string   `json:"id"`
	Mainframe bool     `json:"mainframe"`
	Roles     []string `json:"roles"`
	APIPort   int      `json:"api_port"`
	MTLSPort  int      `json:"mtls_port"`
	// BundlePort serves the registry's SPIFFE trust bundle (https_spiffe
	// profile) for federating peers; 0 picks a free port.
	BundlePort int `json:"bundle_port,omitempty"`
	// Namespace is the registry's Temporal namespace (default: its ID).
	Namespace string `json:"namespace,omitempty"`
}

//go:embed topology.dev.json
var devTopology []byte

// DevTopology returns the embedded demo topology: frame alpha (genesis, a
// mainframe and one operator registry) and frame beta (a mainframe).
func DevTopology() Topology {
	var t Topology
	if err := json.Unmarshal(devTopology, &t); err != nil {
		panic(fmt.Sprintf("embedded topology is invalid: %v", err))
	}
	if err := t.Validate(); err != nil {
		panic(fmt.Sprintf("embedded topology is invalid: %v", err))
	}
	return t
}

// LoadTopology reads path, or returns the embedded demo topology for "".
func LoadTopology(path string) (Topology, error) {
	if path == "" {
		return DevTopology(), nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return Topology{}, fmt.Errorf("read topology: %w", err)
	}
	var t Topology
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Topology{}, fmt.Errorf("parse topology %s: %w", path, err)
	}
	if err := t.Validate(); err != nil {
		return Topology{}, fmt.Errorf("topology %s: %w", path, err)
	}
	return t, nil
}

var idPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}[a-z0-9]$`)

// Validate checks the invariants every other component relies on: unique
// IDs, exactly one mainframe per frame, known roles, distinct ports.
func (t Topology) Validate() error {
	if len(t.Frames) == 0 {
		return fmt.Errorf("no frames")
	}
	frames := map[string]bool{}
	regs := map[string]bool{}
	ports := map[int]string{}
	genesis := 0
	for _, f := range t.Frames {
		if !idPattern.MatchString(f.ID) {
			return fmt.Errorf("frame id %q: want lowercase letters, digits and dashes (2-32 chars)", f.ID)
		}
		if frames[f.ID] {
			return fmt.Errorf("duplicate frame %q", f.ID)
		}
		frames[f.ID] = true
		if f.TrustDomain == "" || f.Currency == "" {
			return fmt.Errorf("frame %q: trust_domain and currency are required", f.ID)
		}
		if f.Genesis {
			genesis++
		}
		if f.GenesisSupplyUnits < 0 {
			return fmt.Errorf("frame %q: negative genesis supply", f.ID)
		}
		mains := 0
		for _, r := range f.Registries {
			if !idPattern.MatchString(r.ID) {
				return fmt.Errorf("registry id %q: want lowercase letters, digits and dashes (2-32 chars)", r.ID)
			}
			if regs[r.ID] {
				return fmt.Errorf("duplicate registry %q", r.ID)
			}
			regs[r.ID] = true
			if r.Mainframe {
				mains++
			}
			for _, role := range r.Roles {
				switch role {
				case RoleRegistry, RoleTEG, RoleEventStore, RoleWorker:
				default:
					return fmt.Errorf("registry %q: unknown role %q", r.ID, role)
				}
			}
			for _, p := range []int{r.APIPort, r.MTLSPort, r.BundlePort} {
				if p == 0 {
					continue // 0 = pick a free port
				}
				if other, dup := ports[p]; dup {
					return fmt.Errorf("registry %q: port %d already used by %s", r.ID, p, other)
				}
				ports[p] = r.ID
			}
		}
		if mains != 1 {
			return fmt.Errorf("frame %q: want exactly one mainframe registry, got %d", f.ID, mains)
		}
	}
	if genesis != 1 {
		return fmt.Errorf("want exactly one genesis frame, got %d", genesis)
	}
	return nil
}

// HasRole reports whether r hosts role.
func (r Registry) HasRole(role string) bool {
	for _, x := range r.Roles {
		if x == role {
			return true
		}
	}
	return false
}

// TemporalNamespace is the namespace the registry's workflows run in.
func (r Registry) TemporalNamespace() string {
	if r.Namespace != "" {
		return r.Namespace
	}
	return r.ID
}

// TaskQueue is the registry's Temporal task queue.
func (r Registry) TaskQueue() string { return r.ID + "-main" }

// DBName returns the database name of role for this registry (registry and
// TEG databases are separate, per SPEC §3).
func (r Registry) DBName(role string) string {
	return strings.ReplaceAll(r.ID, "-", "_") + "_" + role
}

// EventStoreDBName is the frame's EventStore database.
func (f Frame) EventStoreDBName() string {
	return strings.ReplaceAll(f.ID, "-", "_") + "_eventstore"
}

// Topic is the frame's Kafka topic.
func (f Frame) Topic() string { return f.ID + ".events" }

// Mainframe returns the frame's mainframe registry.
func (f Frame) Mainframe() Registry {
	for _, r := range f.Registries {
		if r.Mainframe {
			return r
		}
	}
	return Registry{}
}

// Namespaces lists every Temporal namespace in the topology.
func (t Topology) Namespaces() []string {
	var out []string
	for _, f := range t.Frames {
		for _, r := range f.Registries {
			out = append(out, r.TemporalNamespace())
		}
	}
	return out
}

// Topics lists every frame topic.
func (t Topology) Topics() []string {
	var out []string
	for _, f := range t.Frames {
		out = append(out, f.Topic())
	}
	return out
}
