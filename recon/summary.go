package recon

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"

	"github.com/theprotocol-dev/theprotocol/money"
)

// Account classes a checkpoint sums over. They follow the account's name
// (the EventStore sees only names), not the TEG's kind column.
const (
	ClassIssuance   = "issuance"  // the contra account of mints and burns
	ClassSystem     = "system"    // treasury, fee_collector and any other registry account
	ClassAgent      = "agent"     // did:…
	ClassDeveloper  = "developer" // dev:…
	ClassTransit    = "transit"   // transit:<peer registry>
	ClassCrossFrame = "xframe"    // xframe:<frame>, bridges
)

// TransitPrefix starts the name of the account that carries value to or
// from a peer registry of the frame.
const TransitPrefix = "transit:"

// Class returns the class of a registry-local account name.
func Class(account string) string {
	switch {
	case account == "issuance":
		return ClassIssuance
	case strings.HasPrefix(account, "did:"):
		return ClassAgent
	case strings.HasPrefix(account, "dev:"):
		return ClassDeveloper
	case strings.HasPrefix(account, TransitPrefix):
		return ClassTransit
	case strings.HasPrefix(account, "xframe:"):
		return ClassCrossFrame
	default:
		return ClassSystem
	}
}

// Balance is one (account, bucket) balance in base units.
type Balance struct {
	Account string
	Bucket  string
	Units   int64
}

// Sum is the total of one bucket over one account class.
type Sum struct {
	Bucket string `json:"bucket"`
	Class  string `json:"class"`
	Units  int64  `json:"units"`
}

// Term names the sum in reports: "<bucket>/<class>".
func (s Sum) Term() string { return s.Bucket + "/" + s.Class }

// Summary is what a checkpoint states about a registry's balances.
type Summary struct {
	// Sums per (bucket, class), sorted by bucket then class; classes whose
	// balances are all zero are left out.
	Sums []Sum `json:"sums"`
	// Accounts counts the non-zero (account, bucket) balances.
	Accounts int64 `json:"accounts"`
	// Digest is the hex SHA-256 of every non-zero balance in (account,
	// bucket) byte order, one line each: account NUL bucket NUL units LF.
	Digest string `json:"digest"`
}

// Summarizer builds a Summary from balances fed in strictly increasing
// (account, bucket) byte order, so a scan of millions of rows needs no
// buffer. Zero balances are skipped (an opened, never-funded account is
// not a difference).
type Summarizer struct {
	h        hash.Hash
	sums     map[[2]string]int64
	accounts int64
	last     Balance
	started  bool
	line     []byte
}

// NewSummarizer returns an empty summarizer.
func NewSummarizer() *Summarizer {
	return &Summarizer{h: sha256.New(), sums: map[[2]string]int64{}}
}

// Add feeds one balance. It fails when the order is broken (a repeated or
// unsorted key would make the digest depend on the scan) or a sum
// overflows.
func (s *Summarizer) Add(b Balance) error {
	if s.started {
		if c := compareKeys(s.last, b); c >= 0 {
			return fmt.Errorf("recon: balances out of order: %q/%q after %q/%q", b.Account, b.Bucket, s.last.Account, s.last.Bucket)
		}
	}
	s.started, s.last = true, b
	if b.Units == 0 {
		return nil
	}
	k := [2]string{b.Bucket, Class(b.Account)}
	sum, err := money.Add(s.sums[k], b.Units)
	if err != nil {
		return fmt.Errorf("recon: sum of %s/%s: %w", k[0], k[1], err)
	}
	s.sums[k] = sum
	s.accounts++
	s.line = append(s.line[:0], b.Account...)
	s.line = append(s.line, 0)
	s.line = append(s.line, b.Bucket...)
	s.line = append(s.line, 0)
	s.line = strconv.AppendInt(s.line, b.Units, 10)
	s.line = append(s.line, '\n')
	s.h.Write(s.line)
	return nil
}

// Summary returns the summary of everything added so far.
func (s *Summarizer) Summary() Summary {
	out := Summary{Sums: make([]Sum, 0, len(s.sums)), Accounts: s.accounts, Digest: hex.EncodeToString(s.h.Sum(nil))}
	for k, v := range s.sums {
		if v != 0 {
			out.Sums = append(out.Sums, Sum{Bucket: k[0], Class: k[1], Units: v})
		}
	}
	slices.SortFunc(out.Sums, func(a, b Sum) int {
		return cmp.Or(strings.Compare(a.Bucket, b.Bucket), strings.Compare(a.Class, b.Class))
	})
	return out
}

// Summarize sorts rows and summarises them. Two rows with the same key are
// an error.
func Summarize(rows []Balance) (Summary, error) {
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, compareKeys)
	s := NewSummarizer()
	for _, b := range sorted {
		if err := s.Add(b); err != nil {
			return Summary{}, err
		}
	}
	return s.Summary(), nil
}

func compareKeys(a, b Balance) int {
	return cmp.Or(strings.Compare(a.Account, b.Account), strings.Compare(a.Bucket, b.Bucket))
}
