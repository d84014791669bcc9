package events

// Event types. The emission policy below says which source may author each;
// the EventStore quarantines anything else.
const (
	TypeTokensIssued              = "TokensIssued"
	TypeTokensBurned              = "TokensBurned"
	TypeTokensTransferred         = "TokensTransferred"
	TypeTransactionFeeCollected   = "TransactionFeeCollected"
	TypeTreasuryGrant             = "TreasuryGrant"
	TypeHoldPlaced                = "HoldPlaced"
	TypeHoldPosted                = "HoldPosted"
	TypeHoldVoided                = "HoldVoided"
	TypeHoldExpired               = "HoldExpired"
	TypeAccountOpened             = "AccountOpened"
	TypeDeveloperRegistered       = "DeveloperRegistered"
	TypeAPIKeyRotated             = "ApiKeyRotated"
	TypeAgentRegistered           = "AgentRegistered"
	TypeAgentCardPublished        = "AgentCardPublished"
	TypeCredentialsRotated        = "CredentialsRotated"
	TypeAgentDeregistered         = "AgentDeregistered"
	TypeOrganisationCreated       = "OrganisationCreated"
	TypeOrganisationMemberInvited = "OrganisationMemberInvited"
	TypeOrganisationMemberJoined  = "OrganisationMemberJoined"
	TypeOrganisationMemberRemoved = "OrganisationMemberRemoved"
	TypeReputationBondLocked      = "ReputationBondLocked"
	TypeReputationBondMatured     = "ReputationBondMatured"
	TypeReputationBondForfeited   = "ReputationBondForfeited"
	TypeReputationBondVoided      = "ReputationBondVoided"
	TypeEmissionPolicyChanged     = "EmissionPolicyChanged"

	// Staking.
	TypeTokensStaked      = "TokensStaked"
	TypeUnstakeRequested  = "UnstakeRequested"
	TypeTokensUnstaked    = "TokensUnstaked"
	TypeStakingRewardPaid = "StakingRewardPaid"
	TypeStakeSlashed      = "StakeSlashed"
	TypeDelegationChanged = "DelegationChanged"
	TypeValidatorUpdated  = "ValidatorUpdated"
	TypeStakeMatured      = "StakeMatured" // a locked position's term ended: withdrawable

	// Cross-registry transfer legs (db/migrations/common/00006_emission_saga.sql).
	TypeCrossRegistryDebited  = "CrossRegistryDebited"
	TypeCrossRegistryCredited = "CrossRegistryCredited"
)

// Paid agent calls: the payer's TEG records each step of a payment token
// with the hold it moves (package paidcalls).
const (
	TypePaymentTokenIssued = "PaymentTokenIssued"
	TypePaymentSettled     = "PaymentSettled"
	TypePaymentReleased    = "PaymentReleased"
)

// Cross-registry checks: a transfer the coordinator aborted because its
// target prepared other terms than the coordinator recorded (no postings).
const (
	TypeCrossRegistryTermsMismatch = "CrossRegistryTermsMismatch"
)

// Cross-frame bridge (db/migrations/common/00020_emission_bridge.sql), keys
// bridge-<transfer id>-<step>. Wrapped tokens live in wrapped:<origin frame>
// buckets, balanced against issuance in the same bucket; native value
// leaving the frame sits in bridge:<peer frame>'s locked_bridge bucket.
const (
	TypeBridgeLocked    = "BridgeLocked"    // source: sender liquid → escrow
	TypeBridgeUnlocked  = "BridgeUnlocked"  // source: escrow → sender (the mint never happened)
	TypeBridgeReleased  = "BridgeReleased"  // origin: escrow → recipient (a redemption)
	TypeWrappedMinted   = "WrappedMinted"   // target: wrapped minted to the recipient
	TypeWrappedBurned   = "WrappedBurned"   // target: wrapped burned for a redemption
	TypeWrappedReminted = "WrappedReminted" // target: a refused redemption's burn undone
)

// Reconciliation (db/migrations/common/00012_emission_checkpoint.sql).
const (
	// TypeBalanceCheckpoint is a TEG's statement of its balances as of an
	// outbox sequence number (BalanceCheckpoint payload).
	TypeBalanceCheckpoint = "BalanceCheckpoint"
)

// Disputes (db/migrations/common/00025_emission_dispute.sql), all
// authored by the TEG that records the dispute. DisputeRuled's payload is
// DisputeRuledPayload; the reputation run reads it.
const (
	TypeDisputeOpened         = "DisputeOpened"
	TypeDisputeResponded      = "DisputeResponded"
	TypeDisputeResponseMissed = "DisputeResponseMissed" // the response window passed unused
	TypeDisputeRuled          = "DisputeRuled"
	TypeDisputeLapsed         = "DisputeLapsed" // the ruling window passed unused: no consequence
	// TypeDisputeCompensationMinted mints the award to the complainant
	// (issuance −, complainant liquid +); the supply audit counts it as
	// issuance under its own term, compensation_issued.
	TypeDisputeCompensationMinted = "DisputeCompensationMinted"
	// TypeDisputeFeeCharged moves a losing complainant's fee to the
	// treasury.
	TypeDisputeFeeCharged = "DisputeFeeCharged"
)

// Federation (db/migrations/common/00028_emission_peer_licence.sql): a
// registry's decision on a peer's licence, authored by that registry.
// Payload: PeerStatusChangedPayload.
const TypeFederationPeerStatusChanged = "FederationPeerStatusChanged"

// PeerStatusChangedPayload is the payload of FederationPeerStatusChanged.
type PeerStatusChangedPayload struct {
	Peer        string `json:"peer"` // the peer's SPIFFE ID
	Registry    string `json:"peer_registry"`
	TrustDomain string `json:"trust_domain"`
	From        string `json:"from"` // previous status ("" when first added)
	To          string `json:"to"`
	By          string `json:"by"`
	Reason      string `json:"reason"`
}

// DisputeRuledPayload is the payload of DisputeRuled. Winner and loser are
// the complainant and the respondent in the order the tribunal decided.
type DisputeRuledPayload struct {
	DisputeID   string `json:"dispute_id"`
	TransferID  string `json:"transfer_id"`
	Complainant string `json:"complainant"`
	Respondent  string `json:"respondent"`
	Winner      string `json:"winner"`
	Loser       string `json:"loser"`
	AmountUnits int64  `json:"amount_units"` // the amount in dispute (the claim)
	AwardUnits  int64  `json:"award_units"`  // compensation awarded (0 for a ruling for the respondent)
	Outcome     string `json:"outcome"`      // "complainant" or "respondent"
	Reason      string `json:"reason"`
}

// Reputation runs (db/migrations/common/00024_emission_reputation.sql),
// authored by the EventStore node where the runs compute.
const (
	// TypeTrustScoresPublished: one per reputation run, with the run's
	// digests (reputation.PublishedPayload).
	TypeTrustScoresPublished = "TrustScoresPublished"
	// TypeReputationThresholdBreached: an agent's trust fell below the
	// enforcement floor in a run (reputation.BreachPayload).
	TypeReputationThresholdBreached = "ReputationThresholdBreached"
)

// Governance (db/migrations/common/00022_emission_governance.sql), written
// by the TEG that holds the proposals and the governed parameters.
const (
	TypeProposalCreated  = "ProposalCreated"
	TypeVoteCast         = "VoteCast"
	TypeVoteDelegated    = "VoteDelegated"
	TypeProposalTallied  = "ProposalTallied"
	TypeProposalVetoed   = "ProposalVetoed"
	TypeProposalEnacted  = "ProposalEnacted"
	TypeProposalElevated = "ProposalElevated"
)

// Permission says which sources may author an event type.
type Permission struct {
	FromTEG        bool
	FromRegistry   bool
	FromEventStore bool
	FromWorker     bool
}

// Allows reports whether source may author the type.
func (p Permission) Allows(source string) bool {
	switch source {
	case SourceTEG:
		return p.FromTEG
	case SourceRegistry:
		return p.FromRegistry
	case SourceEventStore:
		return p.FromEventStore
	case SourceWorker:
		return p.FromWorker
	}
	return false
}

var (
	teg        = Permission{FromTEG: true}
	registry   = Permission{FromRegistry: true}
	eventstore = Permission{FromEventStore: true}
)

// DefaultPolicy is the emission policy every database is seeded with
// (db/migrations/common/00004_emission_policy.sql must match it; a test
// checks). Money events come only from the TEG — e.g. TokensTransferred must
// never be double-emitted by the registry — and identity events only from
// the registry.
var DefaultPolicy = map[string]Permission{
	TypeTokensIssued:              teg,
	TypeTokensBurned:              teg,
	TypeTokensTransferred:         teg,
	TypeTransactionFeeCollected:   teg,
	TypeTreasuryGrant:             teg,
	TypeHoldPlaced:                teg,
	TypeHoldPosted:                teg,
	TypeHoldVoided:                teg,
	TypeHoldExpired:               teg,
	TypeAccountOpened:             teg,
	TypeReputationBondLocked:      teg,
	TypeReputationBondMatured:     teg,
	TypeReputationBondForfeited:   teg,
	TypeReputationBondVoided:      teg,
	TypeDeveloperRegistered:       registry,
	TypeAPIKeyRotated:             registry,
	TypeAgentRegistered:           registry,
	TypeAgentCardPublished:        registry,
	TypeCredentialsRotated:        registry,
	TypeAgentDeregistered:         registry,
	TypeOrganisationCreated:       registry,
	TypeOrganisationMemberInvited: registry,
	TypeOrganisationMemberJoined:  registry,
	TypeOrganisationMemberRemoved: registry,
	TypeEmissionPolicyChanged:     eventstore,
	TypeTokensStaked:              teg,
	TypeUnstakeRequested:          teg,
	TypeTokensUnstaked:            teg,
	TypeStakingRewardPaid:         teg,
	TypeStakeSlashed:              teg,
	TypeDelegationChanged:         teg,
	TypeValidatorUpdated:          teg,
	TypeStakeMatured:              teg,
	TypeCrossRegistryDebited:      teg,
	TypeCrossRegistryCredited:     teg,

	TypeCrossRegistryTermsMismatch: teg,

	TypeBridgeLocked: teg, TypeBridgeUnlocked: teg, TypeBridgeReleased: teg,
	TypeWrappedMinted: teg, TypeWrappedBurned: teg, TypeWrappedReminted: teg,

	TypeBalanceCheckpoint: teg,

	TypeDisputeOpened:             teg,
	TypeDisputeResponded:          teg,
	TypeDisputeResponseMissed:     teg,
	TypeDisputeRuled:              teg,
	TypeDisputeLapsed:             teg,
	TypeDisputeCompensationMinted: teg,
	TypeDisputeFeeCharged:         teg,

	TypeTrustScoresPublished:        eventstore,
	TypeReputationThresholdBreached: eventstore,

	TypeProposalCreated:  teg,
	TypeVoteCast:         teg,
	TypeVoteDelegated:    teg,
	TypeProposalTallied:  teg,
	TypeProposalVetoed:   teg,
	TypeProposalEnacted:  teg,
	TypeProposalElevated: teg,

	TypePaymentTokenIssued: teg,
	TypePaymentSettled:     teg,
	TypePaymentReleased:    teg,

	TypeFederationPeerStatusChanged: registry,
}
