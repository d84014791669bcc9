package registry

import "time"

// Limits on caller input and on the registry's own behaviour (everything
// has a limit). The database CHECK constraints repeat the
// ones that protect storage.
const (
	MaxNameBytes        = 100  // agent card name
	MaxDescriptionBytes = 2000 // agent card description
	MaxURLBytes         = 2048 // endpoint and documentation URLs
	MaxVersionBytes     = 32   // card's own version label
	MaxSkills           = 32   // skills per card
	MaxSkillIDBytes     = 64
	MaxSkillNameBytes   = 100
	MaxSkillDescBytes   = 500
	MaxTagsPerSkill     = 10
	MaxTagBytes         = 32
	MaxPaymentNoteBytes = 500
	MaxCardBytes        = 16 << 10 // encoded card

	MaxDeveloperNameBytes = 200
	MaxEmailBytes         = 254
	MaxOrgNameBytes       = 200

	DefaultPageSize = 50
	MaxPageSize     = 100 // listing endpoints cap the limit here
	MaxOrgMembers   = 500 // members listed per organisation

	DefaultBootstrapTTL = 15 * time.Minute
	MaxBootstrapTTL     = time.Hour
	DefaultTokenTTL     = 15 * time.Minute
	MaxTokenTTL         = time.Hour
)
