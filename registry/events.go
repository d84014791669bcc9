package registry

// Event types the registry authors (through its outbox, in the same
// transaction as the state change). Payloads never carry secrets or hashes.
const (
	EventDeveloperRegistered       = "DeveloperRegistered"
	EventAPIKeyRotated             = "ApiKeyRotated"
	EventAgentRegistered           = "AgentRegistered"
	EventAgentCardPublished        = "AgentCardPublished"
	EventCredentialsRotated        = "CredentialsRotated"
	EventAgentDeregistered         = "AgentDeregistered"
	EventOrganisationCreated       = "OrganisationCreated"
	EventOrganisationMemberInvited = "OrganisationMemberInvited"
	EventOrganisationMemberJoined  = "OrganisationMemberJoined"
	EventOrganisationMemberRemoved = "OrganisationMemberRemoved"
)

// EventTypes lists every type above (for the emission policy seed).
var EventTypes = []string{
	EventDeveloperRegistered, EventAPIKeyRotated, EventAgentRegistered,
	EventAgentCardPublished, EventCredentialsRotated, EventAgentDeregistered,
	EventOrganisationCreated, EventOrganisationMemberInvited,
	EventOrganisationMemberJoined, EventOrganisationMemberRemoved,
}
