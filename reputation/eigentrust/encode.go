package eigentrust

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

const graphMagic = "eigentrust-graph-v1\x00"

// Encode is the graph's canonical encoding: equal graphs (the same
// observations, whatever order they were added in) encode to equal bytes.
// It carries the raw sums, not local trust, so a run with other
// parameters can be computed from it. Layout: the magic, the agent count,
// per agent in DID order its DID (uvarint length + bytes), disputes lost
// (uvarint) and slashed (one byte); the pair count, per pair in (truster,
// trusted) order both agents' positions and the volume and penalty, all
// uvarints.
func (g *Graph) Encode() []byte {
	n := len(g.dids)
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	sort.Slice(order, func(a, b int) bool { return g.dids[order[a]] < g.dids[order[b]] })
	pos := make([]uint32, n)
	b := append([]byte(nil), graphMagic...)
	b = binary.AppendUvarint(b, uint64(n))
	for p, id := range order {
		pos[id] = uint32(p)
		b = appendString(b, g.dids[id])
		b = binary.AppendUvarint(b, uint64(g.lost[id]))
		if g.slashed[id] {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	keys := make([]uint64, 0, len(g.pairs))
	for k := range g.pairs {
		keys = append(keys, uint64(pos[uint32(k>>32)])<<32|uint64(pos[uint32(k)]))
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a] < keys[b] })
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, sk := range keys {
		i, j := order[sk>>32], order[uint32(sk)]
		st := g.pairs[key(i, j)]
		b = binary.AppendUvarint(b, sk>>32)
		b = binary.AppendUvarint(b, uint64(uint32(sk)))
		b = binary.AppendUvarint(b, uint64(st.volume))
		b = binary.AppendUvarint(b, uint64(st.penalty))
	}
	return b
}

// InputDigest is the SHA-256 of Encode.
func (g *Graph) InputDigest() [32]byte { return sha256.Sum256(g.Encode()) }

// Decode parses Encode's output. It trusts nothing in b: every length and
// position is checked, agents must be in strictly increasing DID order and
// pairs in strictly increasing order, so a decoded graph encodes back to
// exactly b.
func Decode(b []byte) (*Graph, error) {
	if len(b) < len(graphMagic) || string(b[:len(graphMagic)]) != graphMagic {
		return nil, errors.New("eigentrust: not an encoded graph")
	}
	r := reader{b: b[len(graphMagic):]}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) { // every agent takes at least one byte
		return nil, errors.New("eigentrust: agent count exceeds the input")
	}
	g := NewGraph()
	prev := ""
	for i := uint64(0); i < n && r.err == nil; i++ {
		l := r.uvarint()
		did := r.bytes(l)
		lost := r.uvarint()
		sl := r.byte()
		if r.err != nil {
			break
		}
		if did == "" || (i > 0 && did <= prev) || lost > 1<<62 || sl > 1 {
			return nil, fmt.Errorf("eigentrust: agent %d is malformed or out of order", i)
		}
		prev = did
		id := g.id(did)
		if lost > 0 {
			g.lost[id] = int64(lost)
		}
		if sl == 1 {
			g.slashed[id] = true
		}
	}
	np := r.uvarint()
	if r.err == nil && np > uint64(len(r.b)) {
		return nil, errors.New("eigentrust: pair count exceeds the input")
	}
	var last uint64
	for k := uint64(0); k < np && r.err == nil; k++ {
		i, j, vol, pen := r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint()
		if r.err != nil {
			break
		}
		sk := i<<32 | j
		if i >= n || j >= n || i == j || (k > 0 && sk <= last) || vol > 1<<63-1 || pen > 1<<63-1 || (vol == 0 && pen == 0) {
			return nil, fmt.Errorf("eigentrust: pair %d is malformed or out of order", k)
		}
		last = sk
		g.pairs[key(int32(i), int32(j))] = pairState{volume: int64(vol), penalty: int64(pen)}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, errors.New("eigentrust: trailing bytes after the graph")
	}
	return g, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("eigentrust: truncated or malformed varint")
		return 0
	}
	// Only the shortest encoding: the canonical form is unique, so a
	// graph has one encoding and one input digest.
	if n != len(binary.AppendUvarint(nil, v)) {
		r.err = errors.New("eigentrust: overlong varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) string {
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errors.New("eigentrust: truncated string")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errors.New("eigentrust: truncated input")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}
