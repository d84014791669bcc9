package registryapi

import "github.com/theprotocol-dev/theprotocol/config"

// Settings are the registry role's configurable values (signing key file,
// token lifetimes), read and validated by config.
type Settings = config.RegistrySettings

// Issuer is the token issuer of a registry: its SPIFFE ID
// spiffe://<trust domain>/registry/<id>.
func Issuer(trustDomain, registryID string) string {
	return "spiffe://" + trustDomain + "/registry/" + registryID
}

// Audience is the token audience of a frame: theprotocol:<frame>.
func Audience(frame string) string { return "theprotocol:" + frame }
