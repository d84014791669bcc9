package sim

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"
)

// Account is a simulated account: an agent that sends (it has a token) or
// a receiver.
type Account struct {
	Frame, Registry, ID string
	Token               string // "" for a receiver

	mu        sync.Mutex
	positions []int64 // flexible stakes not yet unstaked
}

func (a *Account) key() string { return a.Registry + "/" + a.ID }

// expect is what an account's buckets must hold given what was
// acknowledged.
type expect struct {
	Liquid, Staked int64
}

// ackedTransfer is a transfer the TEG committed and answered (201), a
// posted hold's transfer among them.
type ackedTransfer struct {
	ID               uuid.UUID
	Registry         string
	From, To         string
	Amount, Fee, Net int64
}

// ackedXfer is a cross-registry transfer the source accepted (202); its
// outcome is read at the end.
type ackedXfer struct {
	ID                      uuid.UUID
	Frame, Source, Target   string
	From, To                *Account
	Amount, Fee             int64
	Status, Reason          string // terminal status once resolved
	CommittedNet            int64
	Resolved, DebitRecorded bool
}

type ackedStake struct {
	Registry string
	Position int64
	Owner    string
	Amount   int64
}

// Model is everything the system acknowledged to the simulation, and the
// balances that follows.
type Model struct {
	mu        sync.Mutex
	expect    map[string]*expect // Account.key()
	transfers []ackedTransfer
	xfers     []*ackedXfer
	stakes    []ackedStake
	doubt     map[string]int    // operation kind → operations whose outcome stayed unknown
	doubtEx   map[string]string // kind → an example
	diffs     []string          // differences found while running (chaos failures)
	// what settles each operation whose answer never came (resolveLater)
	resolvers []resolver
}

// resolver reads, once the system is quiet, what became of an operation
// whose answer never came (the TEG's rows carry the client's key),
// records it in the model, and undoes what it left half-done.
type resolver struct {
	kind string
	fn   func(ctx context.Context, ck *checker) error
}

func (m *Model) resolveLater(kind string, fn func(ctx context.Context, ck *checker) error) {
	m.mu.Lock()
	m.resolvers = append(m.resolvers, resolver{kind, fn})
	m.mu.Unlock()
}

// resolved takes one operation of kind off the in-doubt count.
func (m *Model) resolved(kind string) {
	m.mu.Lock()
	if m.doubt[kind]--; m.doubt[kind] <= 0 {
		delete(m.doubt, kind)
	}
	m.mu.Unlock()
}

func newModel() *Model {
	return &Model{expect: map[string]*expect{}, doubt: map[string]int{}, doubtEx: map[string]string{}}
}

func (m *Model) get(a *Account) *expect {
	e := m.expect[a.key()]
	if e == nil {
		e = &expect{}
		m.expect[a.key()] = e
	}
	return e
}

func (m *Model) credit(a *Account, units int64) {
	m.mu.Lock()
	m.get(a).Liquid += units
	m.mu.Unlock()
}

func (m *Model) transfer(t ackedTransfer, from, to *Account) {
	m.mu.Lock()
	m.get(from).Liquid -= t.Amount
	m.get(to).Liquid += t.Net
	m.transfers = append(m.transfers, t)
	m.mu.Unlock()
}

func (m *Model) xfer(x *ackedXfer) {
	m.mu.Lock()
	m.xfers = append(m.xfers, x)
	m.mu.Unlock()
}

// settle applies a cross-registry transfer's terminal outcome.
func (m *Model) settle(x *ackedXfer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if x.Status == "committed" {
		m.get(x.From).Liquid -= x.Amount
		m.get(x.To).Liquid += x.CommittedNet
	}
}

func (m *Model) stake(a *Account, st ackedStake) {
	m.mu.Lock()
	e := m.get(a)
	e.Liquid -= st.Amount
	e.Staked += st.Amount
	m.stakes = append(m.stakes, st)
	m.mu.Unlock()
}

func (m *Model) unstaked(a *Account, units int64) {
	m.mu.Lock()
	e := m.get(a)
	e.Liquid += units
	e.Staked -= units
	m.mu.Unlock()
}

func (m *Model) inDoubt(kind string, err error) {
	m.mu.Lock()
	m.doubt[kind]++
	if m.doubtEx[kind] == "" {
		m.doubtEx[kind] = err.Error()
	}
	m.mu.Unlock()
}

func (m *Model) differ(format string, args ...any) {
	m.mu.Lock()
	m.diffs = append(m.diffs, fmt.Sprintf(format, args...))
	m.mu.Unlock()
}

func (m *Model) positionIDs() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for _, s := range m.stakes {
		out = append(out, s.Position)
	}
	slices.Sort(out)
	return out
}

func (m *Model) xferOutcomes() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for _, x := range m.xfers {
		st := x.Status
		if st == "" {
			st = "unsettled"
		}
		out[st]++
	}
	return out
}
