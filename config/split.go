package config

import (
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// SplitSettings say where a registry's other roles run when its roles are
// split across processes (docs/adr/0035). A registry-only process needs its
// TEG's mTLS URL (it opens accounts and locks bonds there); a TEG-only
// process needs its registry's (it authenticates API callers and checks
// agents there); an EventStore-only process may have the registry's, for
// its admin routes, and the TEG's, for its reactors that slash stakes.
// Processes hosting both roles ignore them.
type SplitSettings struct {
	// TEGMTLSURL: THEPROTOCOL_TEG_MTLS_URL, e.g. https://10.0.0.6:9101.
	TEGMTLSURL string
	// RegistryMTLSURL: THEPROTOCOL_REGISTRY_MTLS_URL.
	RegistryMTLSURL string
	// Roles, when set, are the roles `serve` hosts of the one registry it
	// runs (-roles, THEPROTOCOL_ROLES, comma-separated): a subset of the
	// topology's roles for it, which name what the registry runs in all.
	Roles []string
	// EventStoreURL is the API base URL of the process hosting the frame's
	// EventStore (-eventstore-url, THEPROTOCOL_EVENTSTORE_URL), used with
	// Roles only (one registry, so one frame; the variable also serves
	// `reputation`); otherwise the mainframe's api_port in the topology.
	EventStoreURL string
}

func (s *SplitSettings) fromEnv(_ *envReader) {
	s.TEGMTLSURL = Env("THEPROTOCOL_TEG_MTLS_URL", "")
	s.RegistryMTLSURL = Env("THEPROTOCOL_REGISTRY_MTLS_URL", "")
	s.Roles = splitList(Env("THEPROTOCOL_ROLES", ""))
	s.EventStoreURL = Env("THEPROTOCOL_EVENTSTORE_URL", "")
}

func splitList(v string) []string {
	var out []string
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func (s *SplitSettings) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.TEGMTLSURL, "teg-mtls-url", s.TEGMTLSURL, "mTLS base URL of this registry's TEG process, for a process hosting the registry (or eventstore) role without the teg role (env THEPROTOCOL_TEG_MTLS_URL)")
	fs.Func("roles", "roles this process hosts of the one registry -registries names, comma-separated, a subset of its topology roles; empty: all of them (env THEPROTOCOL_ROLES)", func(v string) error {
		s.Roles = splitList(v)
		return nil
	})
	fs.StringVar(&s.EventStoreURL, "eventstore-url", s.EventStoreURL, "with -roles: API base URL of the process hosting the frame's EventStore; empty: the mainframe's api_port (env THEPROTOCOL_EVENTSTORE_URL)")
	fs.StringVar(&s.RegistryMTLSURL, "registry-mtls-url", s.RegistryMTLSURL, "mTLS base URL of this registry's registry process, for a process hosting the teg (or eventstore) role without the registry role (env THEPROTOCOL_REGISTRY_MTLS_URL)")
}

// Validate reports a URL that is not an https base URL, an unknown or
// repeated role.
func (s SplitSettings) Validate() error {
	seen := map[string]bool{}
	for _, r := range s.Roles {
		switch r {
		case RoleRegistry, RoleTEG, RoleEventStore, RoleWorker:
		default:
			return fmt.Errorf("roles (env THEPROTOCOL_ROLES): unknown role %q (want %s, %s, %s or %s)", r, RoleRegistry, RoleTEG, RoleEventStore, RoleWorker)
		}
		if seen[r] {
			return fmt.Errorf("roles (env THEPROTOCOL_ROLES): %q twice", r)
		}
		seen[r] = true
	}
	if s.EventStoreURL != "" {
		if p, err := url.Parse(s.EventStoreURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("eventstore-url (env THEPROTOCOL_EVENTSTORE_URL) must be an http(s) base URL such as http://10.0.0.5:8101, got %q", s.EventStoreURL)
		}
	}
	for _, u := range []struct{ flag, env, v string }{
		{"teg-mtls-url", "THEPROTOCOL_TEG_MTLS_URL", s.TEGMTLSURL},
		{"registry-mtls-url", "THEPROTOCOL_REGISTRY_MTLS_URL", s.RegistryMTLSURL},
	} {
		if u.v == "" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || p.Scheme != "https" || p.Host == "" || (p.Path != "" && p.Path != "/") || p.RawQuery != "" {
			return fmt.Errorf("%s (env %s) must be an https base URL such as https://10.0.0.6:9101, got %q", u.flag, u.env, u.v)
		}
	}
	return nil
}

// MissingFor names what a process hosting roles lacks to work split: the
// TEG's URL for a registry without a TEG, the registry's for a TEG without
// a registry, the TEG for a worker ("" when nothing is missing).
func (s SplitSettings) MissingFor(r Registry) string {
	reg, teg := r.HasRole(RoleRegistry), r.HasRole(RoleTEG)
	switch {
	case r.HasRole(RoleWorker) && !teg:
		// Processes polling one task queue must register the same
		// workflows, and most of the registry's move money.
		return "the teg role beside the worker role: the worker runs the TEG's workflows (settlement, holds, bonds) and goes with it"
	case reg && !teg && s.TEGMTLSURL == "":
		return "teg-mtls-url (env THEPROTOCOL_TEG_MTLS_URL): a registry without its TEG in the process opens agents' accounts and bonds on the TEG's process"
	case teg && !reg && s.RegistryMTLSURL == "":
		return "registry-mtls-url (env THEPROTOCOL_REGISTRY_MTLS_URL): a TEG without its registry in the process authenticates callers and checks agents on the registry's process"
	}
	return ""
}

// Host returns r hosting only the configured Roles (r unchanged when none
// are configured); each must be one of r's topology roles.
func (s SplitSettings) Host(r Registry) (Registry, error) {
	if len(s.Roles) == 0 {
		return r, nil
	}
	for _, role := range s.Roles {
		if !r.HasRole(role) {
			return Registry{}, fmt.Errorf("roles (env THEPROTOCOL_ROLES): registry %s has no role %q in the topology (it has %v)", r.ID, role, r.Roles)
		}
	}
	r.Roles = slices.Clone(s.Roles)
	return r, nil
}
