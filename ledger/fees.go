package ledger

import (
	"errors"
	"fmt"
	"time"

	"github.com/theprotocol-dev/theprotocol/money"
)

// The intra-registry fee curve (SPEC §4, whitepaper §5.3).
//
// The fee is charged in basis points of the transfer amount, rounded UP to
// the next base unit, and DEDUCTED from the amount: the sender is debited
// exactly amount_units, the receiver is credited amount_units − fee_units and
// fee_collector is credited fee_units. (The cross-registry transfer uses the
// same convention, so a sender's debit never depends on the route.)
//
// Velocity scaling is an anti-spam throttle on high-frequency
// sender→receiver pairs. Let n be the number of transfers the same ordered
// pair made in the VelocityWindow (60 s) before this one. Then
//
//	n < 10              → 50 bps (0.5%, the base rate)
//	n ≥ 10              → 50 + 50 · (1 + ⌊(n − 10) / 5⌋) bps, capped at 500 bps
//
// i.e. the 11th transfer within a minute pays 1.0%, every 5 more add another
// 0.5%, and from the 51st (n ≥ 50) every transfer pays the 5% maximum:
//
//	n:   0–9  10–14  15–19  20–24  25–29  30–34  35–39  40–44  45–49  ≥50
//	bps:  50   100    150    200    250    300    350    400    450   500
const (
	BaseFeeBps        int64         = 50               // 0.5%
	MaxFeeBps         int64         = 500              // 5%
	VelocityWindow    time.Duration = 60 * time.Second // sliding window per ordered pair
	VelocityThreshold               = 10               // transfers in the window at the base rate
	VelocityStep                    = 5                // every this many more transfers …
	VelocityStepBps   int64         = 50               // … add this many basis points
	// VelocityCountCap is how many prior transfers the store needs to count
	// at most: from this count on the fee is at MaxFeeBps.
	VelocityCountCap = VelocityThreshold + VelocityStep*int((MaxFeeBps-BaseFeeBps)/VelocityStepBps-1)
)

// FeeBpsForVelocity returns the fee rate for a transfer whose ordered
// sender→receiver pair made prior transfers within VelocityWindow before it.
func FeeBpsForVelocity(prior int) int64 {
	if prior < VelocityThreshold {
		return BaseFeeBps
	}
	steps := 1 + int64((prior-VelocityThreshold)/VelocityStep)
	// Cap before multiplying: prior may be arbitrarily large.
	if max := (MaxFeeBps - BaseFeeBps) / VelocityStepBps; steps > max {
		steps = max
	}
	return BaseFeeBps + steps*VelocityStepBps
}

// Fee is the computed split of a transfer amount.
type Fee struct {
	Bps         int64 // rate applied
	FeeUnits    int64 // credited to fee_collector, ≥ 1 for any positive rate
	NetUnits    int64 // credited to the receiver: amount − fee, ≥ 1
	AmountUnits int64 // debited from the sender
}

// ErrAmountTooSmall means the fee would consume the whole amount.
var ErrAmountTooSmall = errors.New("amount too small: the receiver would get nothing after the fee")

// TransferFee splits amount (already validated positive) at rate bps. Because
// fees round up, an amount of 1 unit would leave the receiver nothing; such
// transfers fail with ErrAmountTooSmall. amount == fee + net exactly.
func TransferFee(amount, bps int64) (Fee, error) {
	if err := ValidateAmount(amount); err != nil {
		return Fee{}, err
	}
	if bps < 0 || bps > MaxFeeBps {
		return Fee{}, fmt.Errorf("fee rate %d bps outside 0..%d", bps, MaxFeeBps)
	}
	fee, err := money.FeeBps(amount, bps)
	if err != nil {
		return Fee{}, err
	}
	net := amount - fee // fee ≤ amount because bps ≤ 10000: no overflow
	if net < 1 {
		return Fee{}, ErrAmountTooSmall
	}
	return Fee{Bps: bps, FeeUnits: fee, NetUnits: net, AmountUnits: amount}, nil
}

// ErrAmountNotPositive is returned for zero or negative amounts.
var ErrAmountNotPositive = errors.New("amount_units must be a positive integer number of base units")

// ValidateAmount accepts amounts in 1..MaxInt64.
func ValidateAmount(units int64) error {
	if units <= 0 {
		return ErrAmountNotPositive
	}
	return nil
}
