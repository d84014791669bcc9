package governance

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/theprotocol-dev/theprotocol/money"
)

// The federation tier's rules: a registry's signed local tally of a
// federation proposal, and the originating registry's aggregate over the
// peers it expected. Only the rules are here; collecting the tallies over
// mTLS is not built yet.

// LocalTally is one registry's tally of a federation proposal over its own
// snapshot.
type LocalTally struct {
	ProposalID string
	Registry   string
	Electorate int64
	Yes        int64
	No         int64
	Abstain    int64
	TalliedAt  time.Time
}

// tallyDomain separates these signatures from any other use of the key.
const tallyDomain = "theprotocol/governance/local-tally/v1"

// SigningBytes is the canonical text a registry signs: the domain, then
// every field in a fixed order, one per line, the time in RFC 3339 UTC
// with nanoseconds. Fields are checked not to contain a newline, so no two
// tallies share a text.
func (t LocalTally) SigningBytes() ([]byte, error) {
	if strings.ContainsAny(t.ProposalID+t.Registry, "\n\r") || t.ProposalID == "" || t.Registry == "" {
		return nil, errors.New("governance: tally needs a proposal and a registry without line breaks")
	}
	if t.Electorate < 0 || t.Yes < 0 || t.No < 0 || t.Abstain < 0 {
		return nil, errors.New("governance: negative power in a tally")
	}
	var b strings.Builder
	for _, s := range []string{tallyDomain, t.ProposalID, t.Registry,
		strconv.FormatInt(t.Electorate, 10), strconv.FormatInt(t.Yes, 10), strconv.FormatInt(t.No, 10), strconv.FormatInt(t.Abstain, 10),
		t.TalliedAt.UTC().Format(time.RFC3339Nano)} {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// SignedTally is a local tally with its registry's Ed25519 signature.
type SignedTally struct {
	Tally     LocalTally
	Signature []byte
}

// SignTally signs t with key.
func SignTally(key ed25519.PrivateKey, t LocalTally) (SignedTally, error) {
	msg, err := t.SigningBytes()
	if err != nil {
		return SignedTally{}, err
	}
	return SignedTally{Tally: t, Signature: ed25519.Sign(key, msg)}, nil
}

// Verify checks s against its registry's public key and that the tally is
// consistent (turnout within the electorate).
func (s SignedTally) Verify(pub ed25519.PublicKey) error {
	msg, err := s.Tally.SigningBytes()
	if err != nil {
		return err
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, msg, s.Signature) {
		return fmt.Errorf("governance: the tally of %s has no valid signature", s.Tally.Registry)
	}
	turnout, err := money.Sum(s.Tally.Yes, s.Tally.No, s.Tally.Abstain)
	if err != nil || turnout > s.Tally.Electorate {
		return fmt.Errorf("governance: the tally of %s counts more than its electorate", s.Tally.Registry)
	}
	return nil
}

// FederationResult is the aggregate of the local tallies received.
type FederationResult struct {
	Result
	Counted []string // registries whose tally was counted, sorted
	Missing []string // expected registries without a tally by the deadline, sorted
}

// Aggregate sums the verified local tallies of proposal over the expected
// registries. keys gives each registry's public key; a tally for another
// proposal, from an unexpected registry, twice from one registry, or not
// verifying is an error (the collector must not pass it on silently).
// Registries without a tally are listed as Missing and their electorate is
// unknown, so quorum is measured over the registries counted: the result
// says who was missing, and a caller may refuse to enact with any.
func Aggregate(proposal string, expected []string, keys map[string]ed25519.PublicKey, tallies []SignedTally, r Rules) (FederationResult, error) {
	var out FederationResult
	seen := make(map[string]bool, len(tallies))
	for _, s := range tallies {
		t := s.Tally
		switch {
		case t.ProposalID != proposal:
			return out, fmt.Errorf("governance: a tally of %s is for proposal %s, not %s", t.Registry, t.ProposalID, proposal)
		case !slices.Contains(expected, t.Registry):
			return out, fmt.Errorf("governance: %s is not a registry of this federation proposal", t.Registry)
		case seen[t.Registry]:
			return out, fmt.Errorf("governance: two tallies from %s", t.Registry)
		}
		if err := s.Verify(keys[t.Registry]); err != nil {
			return out, err
		}
		seen[t.Registry] = true
		var err error
		if out.Electorate, err = money.Add(out.Electorate, t.Electorate); err != nil {
			return out, err
		}
		if out.Yes, err = money.Add(out.Yes, t.Yes); err != nil {
			return out, err
		}
		if out.No, err = money.Add(out.No, t.No); err != nil {
			return out, err
		}
		if out.Abstain, err = money.Add(out.Abstain, t.Abstain); err != nil {
			return out, err
		}
		out.Counted = append(out.Counted, t.Registry)
	}
	for _, reg := range expected {
		if !seen[reg] && !slices.Contains(out.Missing, reg) {
			out.Missing = append(out.Missing, reg)
		}
	}
	slices.Sort(out.Counted)
	slices.Sort(out.Missing)
	// Each sum is within the summed electorate, which fits.
	out.Turnout = out.Yes + out.No + out.Abstain
	out.QuorumMet = out.Electorate > 0 && geq(out.Turnout, 10_000, r.QuorumBps, out.Electorate)
	out.Passed = out.QuorumMet && out.Yes > out.No && geq(out.Yes, 10_000, r.ThresholdBps, out.Yes+out.No)
	return out, nil
}
