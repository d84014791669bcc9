package ingest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/theprotocol-dev/theprotocol/events"
)

// The trust directory: the public keys the EventStore accepts each
// registry's records under (docs/adr/0016). Registry r's keys are the PEM
// "PUBLIC KEY" blocks (PKIX, Ed25519) of <dir>/<r>/TrustedKeyFile, more
// than one while a key is being rotated. Only the registries of the
// frame's topology are read. A node writes its own key there at start
// (PublishKey); an operator copies the file of every other registry of the
// frame to the EventStore's host.
const TrustedKeyFile = "event-signing-key.pub"

// KeySource returns the trusted keys of the frame's registries.
type KeySource func() (events.TrustedKeys, error)

// DirectoryKeys reads the trust directory dir for registries. A registry
// without a key file has no trusted key; a file that does not parse is an
// error.
func DirectoryKeys(dir string, registries []string) KeySource {
	regs := slices.Clone(registries)
	return func() (events.TrustedKeys, error) {
		keys := events.TrustedKeys{}
		for _, r := range regs {
			pubs, err := readPublicKeys(filepath.Join(dir, r, TrustedKeyFile))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			keys[r] = pubs
		}
		return keys, nil
	}
}

func readPublicKeys(path string) ([]ed25519.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []ed25519.PublicKey
	for {
		var block *pem.Block
		block, raw = pem.Decode(raw)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("trusted keys %s: unexpected PEM block %q", path, block.Type)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("trusted keys %s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("trusted keys %s: not an Ed25519 key", path)
		}
		out = append(out, pub)
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		return nil, fmt.Errorf("trusted keys %s: trailing data that is not PEM", path)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("trusted keys %s: no PUBLIC KEY block", path)
	}
	return out, nil
}

// PublishKey adds pub to registry's key file in the trust directory dir
// (created if missing), keeping the keys already there: a rotated key
// stays trusted until an operator removes it.
func PublishKey(dir, registry string, pub ed25519.PublicKey) error {
	path := filepath.Join(dir, registry, TrustedKeyFile)
	have, err := readPublicKeys(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, k := range have {
		if k.Equal(pub) {
			return nil
		}
	}
	var out bytes.Buffer
	for _, k := range append(have, pub) {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return fmt.Errorf("encode event signing key: %w", err)
		}
		if err := pem.Encode(&out, &pem.Block{Type: "PUBLIC KEY", Bytes: der}); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// Written aside and renamed: the EventStore may read it meanwhile.
	tmp := path + ".tmp" + fmt.Sprint(time.Now().UnixNano())
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// keysFingerprint names a key set, to keep the verifier (and the groups it
// verified) when a reload finds the same keys.
func keysFingerprint(keys events.TrustedKeys) string {
	var parts []string
	for r, pubs := range keys {
		for _, p := range pubs {
			parts = append(parts, r+"="+events.KeyIDOf(p).String())
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// keyReloadEvery bounds how often records under unknown keys make the
// Applier read the trust directory again (a flood of them costs at most
// this many readings).
const keyReloadEvery = 200 * time.Millisecond

// applierAuth is an Applier's source authentication: where the trusted
// keys come from and the verifier built from the last reading.
type applierAuth struct {
	keys        KeySource
	v           atomic.Pointer[events.Verifier]
	mu          sync.Mutex // serialises readings
	fingerprint string
	readAt      time.Time
}

// current returns the verifier, nil when authentication is off.
func (s *applierAuth) current() *events.Verifier {
	if s.keys == nil {
		return nil
	}
	return s.v.Load()
}

// ReloadKeys reads the trusted keys again (the consumer does every few
// seconds). A reading that fails keeps the keys of the last one.
func (a *Applier) ReloadKeys() error {
	if a.auth.keys == nil {
		return nil
	}
	a.auth.mu.Lock()
	defer a.auth.mu.Unlock()
	return a.auth.readLocked()
}

func (s *applierAuth) readLocked() error {
	s.readAt = time.Now()
	keys, err := s.keys()
	if err != nil {
		return fmt.Errorf("read trusted event signing keys: %w", err)
	}
	// The same keys keep the verifier, and the groups it already checked.
	if fp := keysFingerprint(keys); s.v.Load() == nil || fp != s.fingerprint {
		s.v.Store(events.NewVerifier(keys))
		s.fingerprint = fp
	}
	return nil
}

// refresh reads the keys again unless that was done within
// keyReloadEvery, and returns the verifier.
func (s *applierAuth) refresh(log *slog.Logger) *events.Verifier {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.readAt) >= keyReloadEvery {
		if err := s.readLocked(); err != nil {
			log.Warn("eventstore: reading trusted keys", "err", err)
		}
	}
	return s.v.Load()
}
