// Package governance holds the voting rules (SPEC §6.5, whitepaper §5.4):
// the lock options and their multipliers, veToken voting power in exact
// integer arithmetic, the split-stake defence, one-hop delegation, the
// tally with quorum and threshold, and the validation of a proposal and
// of its executable change. Pure Go, no I/O; the rounding rules and edges
// are written down in README.md and on each function.
package governance
