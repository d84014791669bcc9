package config

import (
	"flag"
	"fmt"
	"path/filepath"
)

// Source authentication modes of the frame's events (docs/adr/0016).
const (
	// EventAuthRequired: relays sign what they publish, and the EventStore
	// accepts a record only when a key it trusts for the registry the
	// record names signed it.
	EventAuthRequired = "required"
	// EventAuthOff: relays publish unsigned records and the EventStore
	// takes every record as from the registry it names (a frame whose
	// topic only trusted writers reach, or during an upgrade).
	EventAuthOff = "off"
)

// EventAuthSettings say how relays sign and the EventStore authenticates
// the frame's events.
type EventAuthSettings struct {
	Mode string // THEPROTOCOL_EVENT_AUTH, EventAuthRequired (default) or EventAuthOff
	// SigningKeyFile is the registry's Ed25519 PEM key its relays sign
	// with, created 0600 when missing (THEPROTOCOL_EVENT_SIGNING_KEY);
	// empty means <data-dir>/<registry>/event-signing-key.pem.
	SigningKeyFile string
	// TrustDir holds <registry>/event-signing-key.pub for each registry of
	// the frame: the keys the EventStore trusts, and where a node writes
	// its own (THEPROTOCOL_EVENT_TRUST_DIR); empty means the data dir.
	TrustDir string
}

// DefaultEventAuthSettings are the settings when nothing is configured.
func DefaultEventAuthSettings() EventAuthSettings {
	return EventAuthSettings{Mode: EventAuthRequired}
}

// Enabled reports whether events are signed and authenticated.
func (s EventAuthSettings) Enabled() bool { return s.Mode == EventAuthRequired }

// KeyFile is registryID's event signing key file: SigningKeyFile when
// set, else its default place under dataDir ("" when neither is known).
func (s EventAuthSettings) KeyFile(dataDir, registryID string) string {
	if s.SigningKeyFile != "" {
		return s.SigningKeyFile
	}
	if dataDir == "" {
		return ""
	}
	return filepath.Join(dataDir, registryID, "event-signing-key.pem")
}

// TrustDirectory is TrustDir, or dataDir when it is not set.
func (s EventAuthSettings) TrustDirectory(dataDir string) string {
	if s.TrustDir != "" {
		return s.TrustDir
	}
	return dataDir
}

func (s *EventAuthSettings) fromEnv(_ *envReader) {
	d := DefaultEventAuthSettings()
	s.Mode = Env("THEPROTOCOL_EVENT_AUTH", d.Mode)
	s.SigningKeyFile = Env("THEPROTOCOL_EVENT_SIGNING_KEY", d.SigningKeyFile)
	s.TrustDir = Env("THEPROTOCOL_EVENT_TRUST_DIR", d.TrustDir)
}

func (s *EventAuthSettings) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.Mode, "event-auth", s.Mode, "source authentication of the frame's events: required (relays sign, the EventStore quarantines what a trusted key did not sign) or off (env THEPROTOCOL_EVENT_AUTH)")
	fs.StringVar(&s.SigningKeyFile, "event-signing-key", s.SigningKeyFile, "registry Ed25519 PEM key its relays sign events with, created 0600 if missing; empty: <data-dir>/<registry>/event-signing-key.pem (env THEPROTOCOL_EVENT_SIGNING_KEY)")
	fs.StringVar(&s.TrustDir, "event-trust-dir", s.TrustDir, "directory of <registry>/event-signing-key.pub, the public keys the EventStore trusts; empty: the data dir (env THEPROTOCOL_EVENT_TRUST_DIR)")
}

// Validate reports a mode that is not one of the two.
func (s EventAuthSettings) Validate() error {
	switch s.Mode {
	case EventAuthRequired, EventAuthOff:
		return nil
	}
	return fmt.Errorf("event-auth (env THEPROTOCOL_EVENT_AUTH) must be %s or %s, got %q", EventAuthRequired, EventAuthOff, s.Mode)
}
