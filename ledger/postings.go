package ledger

import (
	"errors"
	"fmt"

	"github.com/theprotocol-dev/theprotocol/money"
)

// Posting is one leg of a journal entry: delta base units on (Account, Bucket).
type Posting struct {
	Account string
	Bucket  Bucket
	Delta   int64
}

// Limits on journal entries (the database checks the same).
const (
	MinPostings = 2
	MaxPostings = 64
)

// ValidatePostings checks a journal entry: 2..64 legs, known accounts and
// buckets, no zero legs, and deltas that sum to exactly zero (computed with
// overflow checks, so a sum that only "wraps" to zero is rejected).
func ValidatePostings(ps []Posting) error {
	if len(ps) < MinPostings || len(ps) > MaxPostings {
		return fmt.Errorf("journal entry needs %d..%d postings, has %d", MinPostings, MaxPostings, len(ps))
	}
	var sum int64
	var err error
	for i, p := range ps {
		if _, err := KindOf(p.Account); err != nil {
			return fmt.Errorf("posting %d: %w", i, err)
		}
		if err := ValidateBucket(p.Bucket); err != nil {
			return fmt.Errorf("posting %d: %w", i, err)
		}
		if p.Delta == 0 {
			return fmt.Errorf("posting %d: zero delta", i)
		}
		if sum, err = money.Add(sum, p.Delta); err != nil {
			return fmt.Errorf("posting %d: %w", i, err)
		}
	}
	if sum != 0 {
		return errors.New("journal entry does not balance: postings sum to " + money.Format(sum))
	}
	return nil
}
