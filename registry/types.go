package registry

import (
	"time"

	"github.com/google/uuid"
)

// Developer is a human or organisation account that creates agents. Its API
// key is never part of this record: the store only ever holds its hash.
type Developer struct {
	ID               uuid.UUID
	Name             string
	Email            string
	APIKeyID         string // public handle of the current API key
	APIKeyGeneration int64
	CreatedAt        time.Time
	Suspended        bool
}

// Subject is the developer's token subject and ledger account ID.
func (d Developer) Subject() string { return DeveloperSubject(d.ID) }

// Agent statuses.
const (
	AgentActive       = "active"
	AgentDeregistered = "deregistered"
)

// Agent is a registered agent identity. HomeRegistry and Frame say where it
// lives (its TEG accounts are there).
type Agent struct {
	DID                  string
	HomeRegistry         string
	Frame                string
	DeveloperID          uuid.UUID
	OrganisationID       *uuid.UUID
	ClientID             string
	CredentialGeneration int64
	Status               string
	CreatedAt            time.Time
	DeregisteredAt       *time.Time
}

// Active reports whether the agent can authenticate.
func (a Agent) Active() bool { return a.Status == AgentActive }

// PublishedCard is a stored agent card with its version.
type PublishedCard struct {
	DID         string
	Version     int64
	Card        AgentCard
	PublishedAt time.Time
}

// BootstrapToken describes an issued bootstrap token (never the token itself).
type BootstrapToken struct {
	ID             uuid.UUID
	DeveloperID    uuid.UUID
	OrganisationID *uuid.UUID
	CreatedAt      time.Time
	ExpiresAt      time.Time
}

// Organisation owns agents through its members.
type Organisation struct {
	ID        uuid.UUID
	Name      string
	CreatedBy uuid.UUID
	CreatedAt time.Time
}

// Organisation member roles: owners invite and remove members; members
// manage the organisation's agents.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
)

// Member is a developer's membership (or pending invitation) in an
// organisation.
type Member struct {
	ID             uuid.UUID
	OrganisationID uuid.UUID
	DeveloperID    uuid.UUID
	Role           string
	InvitedBy      uuid.UUID
	InvitedAt      time.Time
	AcceptedAt     *time.Time
}

// Accepted reports whether the member accepted the invitation.
func (m Member) Accepted() bool { return m.AcceptedAt != nil }

// AdminClient is an operator credential with the admin scope.
type AdminClient struct {
	ID        uuid.UUID
	Name      string
	ClientID  string
	CreatedAt time.Time
	Revoked   bool
}
