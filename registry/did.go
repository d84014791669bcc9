package registry

import (
	"strings"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// DIDPrefix starts every agent DID.
const DIDPrefix = "did:theprotocol:"

// DIDLen is the length of a canonical DID: the prefix and a 36-character
// lowercase UUID.
const DIDLen = len(DIDPrefix) + 36

// NewDID returns a fresh DID `did:theprotocol:<uuid>` (random UUIDv4: a DID
// must not reveal when or where it was made).
func NewDID() string { return DIDPrefix + uuid.New().String() }

// DIDFromUUID formats id as a DID.
func DIDFromUUID(id uuid.UUID) string { return DIDPrefix + id.String() }

// ParseDID accepts only the canonical form `did:theprotocol:<uuid>` with a
// lowercase, hyphenated UUID, so every DID has exactly one spelling (it is a
// primary key and a ledger account ID). It returns apperr.Invalid otherwise.
func ParseDID(s string) (uuid.UUID, error) {
	if len(s) != DIDLen || !strings.HasPrefix(s, DIDPrefix) {
		return uuid.Nil, apperr.New(apperr.Invalid, "DID must look like %s<uuid>", DIDPrefix)
	}
	raw := s[len(DIDPrefix):]
	id, err := uuid.Parse(raw)
	if err != nil || id.String() != raw || id == uuid.Nil {
		return uuid.Nil, apperr.New(apperr.Invalid, "DID must look like %s<uuid> with a lowercase UUID", DIDPrefix)
	}
	return id, nil
}

// ValidDID reports whether s is a canonical DID.
func ValidDID(s string) bool {
	_, err := ParseDID(s)
	return err == nil
}

// DeveloperSubject is the token subject and ledger account ID of a developer
// (its wallet): "dev:<uuid>".
func DeveloperSubject(id uuid.UUID) string { return SubjectPrefixDeveloper + id.String() }

// AdminSubject is the token subject of an admin client: "admin:<uuid>".
func AdminSubject(id uuid.UUID) string { return SubjectPrefixAdmin + id.String() }

// Subject prefixes of non-agent principals.
const (
	SubjectPrefixDeveloper = "dev:"
	SubjectPrefixAdmin     = "admin:"
)

// ParseSubject splits a token subject into its kind and ID. Agents are
// identified by their DID; developers and admins by their UUID.
func ParseSubject(sub string) (kind string, id string, err error) {
	switch {
	case strings.HasPrefix(sub, DIDPrefix):
		if _, err := ParseDID(sub); err != nil {
			return "", "", err
		}
		return KindAgent, sub, nil
	case strings.HasPrefix(sub, SubjectPrefixDeveloper):
		return parseUUIDSubject(KindDeveloper, sub[len(SubjectPrefixDeveloper):])
	case strings.HasPrefix(sub, SubjectPrefixAdmin):
		return parseUUIDSubject(KindAdmin, sub[len(SubjectPrefixAdmin):])
	}
	return "", "", apperr.New(apperr.Invalid, "unknown subject kind")
}

func parseUUIDSubject(kind, raw string) (string, string, error) {
	id, err := uuid.Parse(raw)
	if err != nil || id.String() != raw {
		return "", "", apperr.New(apperr.Invalid, "malformed %s subject", kind)
	}
	return kind, raw, nil
}

// Principal kinds (token subjects and ledger account kinds).
const (
	KindAgent     = "agent"
	KindDeveloper = "developer"
	KindAdmin     = "admin"
)
