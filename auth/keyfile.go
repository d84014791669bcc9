package auth

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateKey reads the registry's Ed25519 signing key from path (PEM
// "PRIVATE KEY", PKCS #8). When the file does not exist it creates one with
// a fresh key, mode 0600, without overwriting a file a concurrent starter
// wrote first. It refuses a key file readable by group or others.
//
// The key lives in a file, not the registry database: database dumps and
// backups travel further than a 0600 file that production mounts from its
// secret store.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		return nil, fmt.Errorf("auth: signing key path is empty")
	}
	key, err := loadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("auth: encode signing key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("auth: signing key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadKey(path) // another process won the race
	}
	if err != nil {
		return nil, fmt.Errorf("auth: create signing key file: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, fmt.Errorf("auth: write signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("auth: write signing key: %w", err)
	}
	return priv, nil
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("auth: signing key %s is accessible by group or others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read signing key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("auth: signing key %s is not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: parse signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("auth: signing key %s is not Ed25519", path)
	}
	return priv, nil
}

// DeriveKey derives a 32-byte symmetric key for purpose from the signing
// key's seed (HKDF-SHA256), so one secret file yields independent keys
// (e.g. the encryption of stored idempotent responses) without any of them
// revealing the signing key.
func DeriveKey(priv ed25519.PrivateKey, purpose string) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize || purpose == "" {
		return nil, fmt.Errorf("auth: derive key needs an Ed25519 key and a purpose")
	}
	return hkdf.Key(sha256.New, priv.Seed(), nil, "theprotocol/registry/"+purpose, 32)
}
