package config

import (
	"flag"
	"fmt"
	"net/url"
)

// SplitSettings say where a registry's other roles run when its roles are
// split across processes (docs/adr/0035). A registry-only process needs its
// TEG's mTLS URL (it opens accounts and locks bonds there); a TEG-only
// process needs its registry's (it authenticates API callers and checks
// agents there); an EventStore-only process may have the registry's, for
// its admin routes. Processes hosting both roles ignore them.
type SplitSettings struct {
	// TEGMTLSURL: THEPROTOCOL_TEG_MTLS_URL, e.g. https://10.0.0.6:9101.
	TEGMTLSURL string
	// RegistryMTLSURL: THEPROTOCOL_REGISTRY_MTLS_URL.
	RegistryMTLSURL string
}

func (s *SplitSettings) fromEnv(_ *envReader) {
	s.TEGMTLSURL = Env("THEPROTOCOL_TEG_MTLS_URL", "")
	s.RegistryMTLSURL = Env("THEPROTOCOL_REGISTRY_MTLS_URL", "")
}

func (s *SplitSettings) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.TEGMTLSURL, "teg-mtls-url", s.TEGMTLSURL, "mTLS base URL of this registry's TEG process, for a process hosting the registry role without the teg role (env THEPROTOCOL_TEG_MTLS_URL)")
	fs.StringVar(&s.RegistryMTLSURL, "registry-mtls-url", s.RegistryMTLSURL, "mTLS base URL of this registry's registry process, for a process hosting the teg (or eventstore) role without the registry role (env THEPROTOCOL_REGISTRY_MTLS_URL)")
}

// Validate reports a URL that is not an https base URL.
func (s SplitSettings) Validate() error {
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
// a registry ("" when nothing is missing).
func (s SplitSettings) MissingFor(r Registry) string {
	reg, teg := r.HasRole(RoleRegistry), r.HasRole(RoleTEG)
	switch {
	case reg && !teg && s.TEGMTLSURL == "":
		return "teg-mtls-url (env THEPROTOCOL_TEG_MTLS_URL): a registry without its TEG in the process opens agents' accounts and bonds on the TEG's process"
	case teg && !reg && s.RegistryMTLSURL == "":
		return "registry-mtls-url (env THEPROTOCOL_REGISTRY_MTLS_URL): a TEG without its registry in the process authenticates callers and checks agents on the registry's process"
	}
	return ""
}
