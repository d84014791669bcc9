package ingest

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/theprotocol-dev/theprotocol/money"
)

type balanceKey struct{ account, bucket string }

// balanceDeltas nets postings per (account, bucket): the ingest batch's
// changes to the balance projection, or a replay's recomputed balances.
// A map from key to position plus the sums in a slice: one map operation
// per posting (a map of sums took two, a lookup and a store), and taking a
// batch's redelivered events back out copies a slice instead of a map (see
// clone).
type balanceDeltas struct {
	index  map[balanceKey]int32
	keys   []balanceKey
	deltas []int64
	// shared: index and keys belong to the balanceDeltas this was cloned
	// from, and are copied before a new key is added.
	shared bool
	// The last account qualified, so a system account that every event
	// names (fee_collector) is not concatenated per posting.
	lastRegistry, lastAccount, lastQualified string
}

func newBalanceDeltas(sizeHint int) *balanceDeltas {
	return &balanceDeltas{index: make(map[balanceKey]int32, sizeHint), keys: make([]balanceKey, 0, sizeHint), deltas: make([]int64, 0, sizeHint)}
}

// add adds v to k's sum, overflow-checked.
func (b *balanceDeltas) add(k balanceKey, v int64) error {
	i, ok := b.index[k]
	if !ok {
		if b.shared {
			b.index, b.keys, b.shared = maps.Clone(b.index), slices.Clone(b.keys), false
		}
		i = int32(len(b.keys))
		b.index[k] = i
		b.keys = append(b.keys, k)
		b.deltas = append(b.deltas, 0)
	}
	s, err := money.Add(b.deltas[i], v)
	if err != nil {
		return fmt.Errorf("projection overflow: %w", err)
	}
	b.deltas[i] = s
	return nil
}

// get is k's sum (0 if absent).
func (b *balanceDeltas) get(k balanceKey) int64 {
	if i, ok := b.index[k]; ok {
		return b.deltas[i]
	}
	return 0
}

// len is the number of keys.
func (b *balanceDeltas) len() int { return len(b.keys) }

// clone returns a copy whose sums can change independently of b's; the
// key index is shared until the copy adds a key b does not have.
func (b *balanceDeltas) clone() *balanceDeltas {
	return &balanceDeltas{index: b.index, keys: b.keys, deltas: slices.Clone(b.deltas), shared: true}
}

// qualify is Qualify, remembering the last result.
func (b *balanceDeltas) qualify(registry, account string) string {
	if account == b.lastAccount && registry == b.lastRegistry {
		return b.lastQualified
	}
	q := Qualify(registry, account)
	b.lastRegistry, b.lastAccount, b.lastQualified = registry, account, q
	return q
}

// sorted returns the positions of b's keys in key order.
func (b *balanceDeltas) sorted() []int32 {
	order := make([]int32, len(b.keys))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int { return compareBalanceKeys(b.keys[x], b.keys[y]) })
	return order
}

func compareBalanceKeys(x, y balanceKey) int {
	if c := strings.Compare(x.account, y.account); c != 0 {
		return c
	}
	return strings.Compare(x.bucket, y.bucket)
}
