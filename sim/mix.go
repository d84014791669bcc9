package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Op is one kind of operation the simulation drives. Run picks its actors
// with r, sends the requests through s (which times them and retries
// unknown outcomes with the same Idempotency-Key) and records what the
// system acknowledged in s's model, which the end-of-run checks compare
// with the ledger, the EventStore and the audit.
//
// Run returns nil when the operation was acknowledged, ErrSkip when no
// actor is eligible (nothing was sent), an error wrapping errIndefinite
// when the outcome stayed unknown, any other error for a refusal.
type Op struct {
	Name string
	Run  func(ctx context.Context, s *Sim, r *rand.Rand) error
}

// ErrSkip: the operation had no eligible actor and sent nothing.
var ErrSkip = errors.New("no eligible actor")

var (
	opsMu sync.RWMutex
	ops   = map[string]Op{}
)

// RegisterOp adds an operation kind (the extension point for the flows
// that land later: bridge transfers, votes, disputes). Names are unique.
func RegisterOp(op Op) {
	opsMu.Lock()
	defer opsMu.Unlock()
	if _, dup := ops[op.Name]; dup || op.Name == "" || op.Run == nil {
		panic("sim: operation " + op.Name + " registered twice or incomplete")
	}
	ops[op.Name] = op
}

// OpNames lists the registered operation kinds.
func OpNames() []string {
	opsMu.RLock()
	defer opsMu.RUnlock()
	return sortedKeys(ops)
}

// Mix is the weighted choice of operations.
type Mix []weighted

type weighted struct {
	op     Op
	weight int
}

// DefaultMix is the mix of today's flows.
const DefaultMix = "transfer=55,xfer=15,hold=15,stake=10,unstake=5"

// ParseMix reads "name=weight,…" (weights are positive integers).
func ParseMix(spec string) (Mix, error) {
	var m Mix
	seen := map[string]bool{}
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		weight, err := strconv.Atoi(w)
		if !ok || err != nil || weight < 1 || weight > 1_000_000 {
			return nil, fmt.Errorf("mix: %q is not name=<positive weight>", part)
		}
		opsMu.RLock()
		op, known := ops[name]
		opsMu.RUnlock()
		if !known {
			return nil, fmt.Errorf("mix: unknown operation %q (known: %s)", name, strings.Join(OpNames(), ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("mix: %q named twice", name)
		}
		seen[name] = true
		m = append(m, weighted{op, weight})
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("mix: no operation in %q", spec)
	}
	slices.SortFunc(m, func(a, b weighted) int { return strings.Compare(a.op.Name, b.op.Name) })
	return m, nil
}

func (m Mix) pick(r *rand.Rand) Op {
	total := 0
	for _, w := range m {
		total += w.weight
	}
	n := r.IntN(total)
	for _, w := range m {
		if n < w.weight {
			return w.op
		}
		n -= w.weight
	}
	return m[len(m)-1].op
}
