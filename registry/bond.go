package registry

import "time"

// The reputation bond's maturity rule (whitepaper §5.5). An agent's bond,
// locked from its developer's wallet when the agent is created, matures
// (returns to the agent's liquid balance) once the agent is old enough,
// active enough and trusted enough; it is forfeited to the treasury if the
// agent deregisters first, and voided (returned to the developer) if the
// agent was never created. The BondMaturation workflow waits and asks;
// this file decides.

// AgentMissing is what the bond check reports for an agent the registry
// has no record of (its creation failed after the bond was locked). It is
// not a stored agent status.
const AgentMissing = "missing"

// BondCriteria are the conditions of maturity.
type BondCriteria struct {
	MinAge       time.Duration // since the bond was locked
	MinTransfers int64         // transfers the agent sent
	MinTrustBps  int64         // trust-score floor, basis points (0..10000)
}

// BondFacts are what is known of the agent when its bond is checked.
type BondFacts struct {
	Agent     string        // AgentActive, AgentDeregistered or AgentMissing
	Age       time.Duration // since the bond was locked
	Transfers int64
	TrustBps  int64
}

// BondVerdict is what happens to the bond after a check.
type BondVerdict string

// Verdicts.
const (
	BondMature  BondVerdict = "mature"  // release it to the agent
	BondWait    BondVerdict = "wait"    // check again later
	BondForfeit BondVerdict = "forfeit" // move it to the treasury
	BondVoid    BondVerdict = "void"    // return it to the developer
)

// Reasons a bond waits.
const (
	ReasonBondTooYoung      = "younger than the minimum age"
	ReasonBondFewTransfers  = "not enough transfers"
	ReasonBondTrustTooLow   = "trust score below the floor"
	reasonBondAgentPrefixed = "agent "
)

// DecideBond applies the maturity rule: the agent's state first (see
// BondNext), then age, transfer count and trust, each a floor the agent
// must reach. The reason says why a bond does not mature ("" when it
// does); only the first unmet condition is named.
func DecideBond(c BondCriteria, f BondFacts) (BondVerdict, string) {
	if f.Agent != AgentActive {
		return BondNext(f.Agent, false), reasonBondAgentPrefixed + f.Agent
	}
	switch {
	case f.Age < c.MinAge:
		return BondWait, ReasonBondTooYoung
	case f.Transfers < c.MinTransfers:
		return BondWait, ReasonBondFewTransfers
	case f.TrustBps < c.MinTrustBps:
		return BondWait, ReasonBondTrustTooLow
	}
	return BondNext(f.Agent, true), ""
}

// BondNext is the verdict from the agent's state and whether the criteria
// were met (as DecideBond found them, which it never does for an agent
// that is not active): a deregistered agent forfeits its bond and a
// missing one has it voided, whatever its record; otherwise the bond
// matures when the criteria were met and waits for the next check when
// they were not.
func BondNext(agent string, criteriaMet bool) BondVerdict {
	switch {
	case agent == AgentDeregistered:
		return BondForfeit
	case agent == AgentMissing:
		return BondVoid
	case criteriaMet:
		return BondMature
	}
	return BondWait
}

// DefaultBondUnits is the reputation bond every agent locks at creation
// (whitepaper §5.5): 50 AVT, taken from its developer's wallet.
const DefaultBondUnits int64 = 50 * 100_000_000
