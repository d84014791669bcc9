package node

import "github.com/theprotocol-dev/theprotocol/config"

// BondSettings are the reputation bond's maturity criteria (whitepaper
// §5.5), read and validated by config and handed in through Options. The
// bond itself is wired in mountRegistry (packages onboarding and bonds).
type BondSettings = config.BondSettings
