package registryapi

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// Environment variables of the registry role (flags, if any, are the
// wiring's business; these are the defaults it should read).
const (
	EnvSigningKeyFile = "THEPROTOCOL_REGISTRY_SIGNING_KEY" // Ed25519 PEM; default <data-dir>/<registry>/registry-signing-key.pem, created 0600 if missing
	EnvTokenTTL       = "THEPROTOCOL_TOKEN_TTL"            // bearer token lifetime, default 15m, max 1h
	EnvBootstrapTTL   = "THEPROTOCOL_BOOTSTRAP_TTL"        // bootstrap token lifetime, default 15m, max 1h
)

// Settings are the registry role's configurable values.
type Settings struct {
	SigningKeyFile string
	TokenTTL       time.Duration
	BootstrapTTL   time.Duration
}

// SettingsFromEnv reads Settings from the environment with the defaults
// above; dataDir and registryID place the default key file.
func SettingsFromEnv(dataDir, registryID string) (Settings, error) {
	s := Settings{
		SigningKeyFile: config.Env(EnvSigningKeyFile, filepath.Join(dataDir, registryID, "registry-signing-key.pem")),
		TokenTTL:       config.EnvDuration(EnvTokenTTL, registry.DefaultTokenTTL),
		BootstrapTTL:   config.EnvDuration(EnvBootstrapTTL, registry.DefaultBootstrapTTL),
	}
	if s.TokenTTL <= 0 || s.TokenTTL > registry.MaxTokenTTL {
		return Settings{}, fmt.Errorf("%s must be within (0, %s], got %s", EnvTokenTTL, registry.MaxTokenTTL, s.TokenTTL)
	}
	if s.BootstrapTTL <= 0 || s.BootstrapTTL > registry.MaxBootstrapTTL {
		return Settings{}, fmt.Errorf("%s must be within (0, %s], got %s", EnvBootstrapTTL, registry.MaxBootstrapTTL, s.BootstrapTTL)
	}
	return s, nil
}

// Issuer is the token issuer of a registry: its SPIFFE ID
// spiffe://<trust domain>/registry/<id>.
func Issuer(trustDomain, registryID string) string {
	return "spiffe://" + trustDomain + "/registry/" + registryID
}

// Audience is the token audience of a frame: theprotocol:<frame>.
func Audience(frame string) string { return "theprotocol:" + frame }
