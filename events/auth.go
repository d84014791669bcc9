package events

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"math/bits"
	"sync"
)

// Source authentication of published envelopes (docs/adr/0016). A relay
// cuts what it publishes into groups of consecutive records (at most
// MaxGroupSize), builds a Merkle tree over them — leaf i is the hash of
// record i's sequence number and envelope bytes — and signs the root once
// with its registry's Ed25519 key, together with the registry, the source
// and the group size. Every record carries, in the Kafka header
// HeaderAuth, that signature and its own audit path, so the EventStore
// checks each record on its own whatever partition, batch or order it
// arrives in, and checks a group's signature once (Verifier remembers the
// groups it checked). The envelope bytes are left as they are.
//
// Header layout (version 1), big-endian:
//
//	[0]      version (1)
//	[1:9]    key ID: the first 8 bytes of SHA-256 of the public key
//	[9:11]   group size n (1..MaxGroupSize)
//	[11:13]  leaf index i (< n)
//	[13:77]  Ed25519 signature of the group (see groupMessage)
//	[77:]    the audit path of leaf i, 32 bytes per node, leaf upwards
//	         (RFC 9162 §2.1.3)
const (
	HeaderAuth   = "tp-auth"
	authVersion  = 1
	authFixedLen = 77
	// MaxGroupSize bounds a signed group (the header's size field is 16
	// bits). DefaultGroupSize is what relays use: one signature per 256
	// records keeps its verification (~50 µs) near 0.2 µs per record while
	// each record carries 8 path nodes (256 bytes).
	MaxGroupSize     = 1<<16 - 1
	DefaultGroupSize = 256
	// maxNameLen bounds the registry and source names a signature covers
	// (they are length-prefixed with one byte).
	maxNameLen = 255
)

// KeyID names a signing key in headers: the first 8 bytes of the SHA-256
// of its public key.
type KeyID [8]byte

// KeyIDOf returns pub's key ID.
func KeyIDOf(pub ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(pub)
	var id KeyID
	copy(id[:], sum[:])
	return id
}

func (id KeyID) String() string { return fmt.Sprintf("%x", id[:]) }

// leafHash is the tree's leaf for one record: its sequence number and the
// envelope exactly as published. The 0x00/0x01 prefixes keep a leaf from
// ever being taken for an inner node.
func leafHash(seq int64, envelope []byte) [32]byte {
	h := digests.Get().(hash.Hash)
	h.Reset()
	var pre [9]byte
	binary.BigEndian.PutUint64(pre[1:], uint64(seq))
	h.Write(pre[:])
	h.Write(envelope)
	var out [32]byte
	h.Sum(out[:0])
	digests.Put(h)
	return out
}

// digests recycles SHA-256 states: a new one per record was a tenth of
// the cost of checking it.
var digests = sync.Pool{New: func() any { return sha256.New() }}

func nodeHash(left, right *[32]byte) [32]byte {
	var buf [65]byte
	buf[0] = 1
	copy(buf[1:33], left[:])
	copy(buf[33:], right[:])
	return sha256.Sum256(buf[:])
}

// groupMessage is what a group's signature covers: a fixed context, the
// registry and source whose sequence the group belongs to, the group size
// and the Merkle root.
func groupMessage(registry, source string, n int, root [32]byte) []byte {
	const context = "theprotocol/events/group/v1"
	m := make([]byte, 0, len(context)+2+len(registry)+len(source)+2+32)
	m = append(m, context...)
	m = append(m, byte(len(registry)))
	m = append(m, registry...)
	m = append(m, byte(len(source)))
	m = append(m, source...)
	m = binary.BigEndian.AppendUint16(m, uint16(n))
	return append(m, root[:]...)
}

// Signer signs what one registry's relays publish.
type Signer struct {
	key ed25519.PrivateKey
	id  KeyID
	// GroupSize is the number of records per signature (default
	// DefaultGroupSize, at most MaxGroupSize).
	GroupSize int
}

// NewSigner returns a signer with key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, id: KeyIDOf(key.Public().(ed25519.PublicKey)), GroupSize: DefaultGroupSize}
}

// Public returns the signer's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign returns the HeaderAuth value of each record (seqs[i], envelopes[i])
// of source of registry, cutting them into groups of GroupSize in the
// order given.
func (s *Signer) Sign(registry, source string, seqs []int64, envelopes [][]byte) ([][]byte, error) {
	if len(seqs) != len(envelopes) {
		return nil, fmt.Errorf("sign: %d sequence numbers for %d envelopes", len(seqs), len(envelopes))
	}
	if len(registry) > maxNameLen || len(source) > maxNameLen {
		return nil, fmt.Errorf("sign: registry or source name longer than %d bytes", maxNameLen)
	}
	g := s.GroupSize
	if g <= 0 || g > MaxGroupSize {
		g = DefaultGroupSize
	}
	out := make([][]byte, len(seqs))
	leaves := make([][32]byte, min(g, len(seqs)))
	for lo := 0; lo < len(seqs); lo += g {
		hi := min(lo+g, len(seqs))
		n := hi - lo
		leaves = leaves[:n]
		for i := range n {
			leaves[i] = leafHash(seqs[lo+i], envelopes[lo+i])
		}
		paths := make([][][32]byte, n)
		root := buildTree(leaves, paths)
		sig := ed25519.Sign(s.key, groupMessage(registry, source, n, root))
		for i := range n {
			h := make([]byte, authFixedLen, authFixedLen+32*len(paths[i]))
			h[0] = authVersion
			copy(h[1:9], s.id[:])
			binary.BigEndian.PutUint16(h[9:11], uint16(n))
			binary.BigEndian.PutUint16(h[11:13], uint16(i))
			copy(h[13:77], sig)
			for _, p := range paths[i] {
				h = append(h, p[:]...)
			}
			out[lo+i] = h
		}
	}
	return out, nil
}

// buildTree returns the Merkle tree hash of leaves (RFC 9162 §2.1.1: the
// left subtree holds the largest power of two below n) and appends each
// leaf's audit path to paths[i], nearest sibling first.
func buildTree(leaves [][32]byte, paths [][][32]byte) [32]byte {
	n := len(leaves)
	if n == 1 {
		return leaves[0]
	}
	k := 1 << (bits.Len(uint(n-1)) - 1)
	left := buildTree(leaves[:k], paths[:k])
	right := buildTree(leaves[k:], paths[k:])
	for i := range k {
		paths[i] = append(paths[i], right)
	}
	for i := k; i < n; i++ {
		paths[i] = append(paths[i], left)
	}
	return nodeHash(&left, &right)
}

// pathLen is the length of leaf i's audit path in a tree of n leaves.
func pathLen(i, n int) int {
	l := 0
	for n > 1 {
		k := 1 << (bits.Len(uint(n-1)) - 1)
		if i < k {
			n = k
		} else {
			i, n = i-k, n-k
		}
		l++
	}
	return l
}

// AuthReason classifies why a record failed authentication.
type AuthReason int

const (
	// AuthUnsigned: the record has no HeaderAuth.
	AuthUnsigned AuthReason = iota + 1
	// AuthMalformed: the header does not parse (version, length, index).
	AuthMalformed
	// AuthUnknownKey: no trusted registry has the header's key.
	AuthUnknownKey
	// AuthWrongRegistry: the key belongs to another registry than the one
	// the envelope names.
	AuthWrongRegistry
	// AuthBadSignature: the signature does not verify over the root the
	// record's path leads to — the record was altered, renumbered, or is
	// not part of the group that was signed.
	AuthBadSignature
)

// AuthError is why a record failed authentication.
type AuthError struct {
	Reason AuthReason
	Detail string
}

func (e *AuthError) Error() string { return e.Detail }

// TrustedKeys are the public keys each registry of the frame signs with
// (more than one while a key is being rotated).
type TrustedKeys map[string][]ed25519.PublicKey

type trustedKey struct {
	registry string
	pub      ed25519.PublicKey
}

// groupID names a verified group: everything its signature covers.
type groupID struct {
	key      KeyID
	registry string
	source   string
	n        uint16
	root     [32]byte
}

// maxVerifiedGroups bounds the remembered groups (a relay batch of 5,000
// records is 20 groups). When full they are forgotten: the next record of
// each group costs one signature check again.
const maxVerifiedGroups = 1 << 14

// Verifier checks records against the trusted keys. It remembers the
// groups whose signature it checked. It is safe for concurrent use.
type Verifier struct {
	keys     map[KeyID]trustedKey
	mu       sync.RWMutex
	verified map[groupID]struct{}
}

// NewVerifier returns a verifier trusting keys.
func NewVerifier(keys TrustedKeys) *Verifier {
	v := &Verifier{keys: map[KeyID]trustedKey{}, verified: map[groupID]struct{}{}}
	for reg, pubs := range keys {
		for _, pub := range pubs {
			if len(pub) == ed25519.PublicKeySize {
				v.keys[KeyIDOf(pub)] = trustedKey{registry: reg, pub: pub}
			}
		}
	}
	return v
}

// AuthRecord is one record to check: its HeaderAuth value, the sequence
// number it was published under, the envelope bytes and the registry and
// source the envelope names.
type AuthRecord struct {
	Header   []byte
	Seq      int64
	Envelope []byte
	Registry string
	Source   string
}

// header is a parsed HeaderAuth.
type header struct {
	id   KeyID
	n, i int
	sig  []byte
	path []byte
}

func parseHeader(h []byte) (header, *AuthError) {
	if len(h) == 0 {
		return header{}, &AuthError{AuthUnsigned, "unsigned record"}
	}
	if len(h) < authFixedLen || h[0] != authVersion {
		return header{}, &AuthError{AuthMalformed, fmt.Sprintf("signature header of %d bytes, version %d", len(h), h[0])}
	}
	p := header{n: int(binary.BigEndian.Uint16(h[9:11])), i: int(binary.BigEndian.Uint16(h[11:13])), sig: h[13:77], path: h[authFixedLen:]}
	copy(p.id[:], h[1:9])
	if p.n == 0 || p.i >= p.n || len(p.path) != 32*pathLen(p.i, p.n) {
		return header{}, &AuthError{AuthMalformed, fmt.Sprintf("signature header: leaf %d of %d with %d bytes of path", p.i, p.n, len(p.path))}
	}
	return p, nil
}

// key finds the trusted key of a parsed header for registry.
func (v *Verifier) key(p header, registry, source string) (trustedKey, *AuthError) {
	k, ok := v.keys[p.id]
	if !ok {
		return k, &AuthError{AuthUnknownKey, fmt.Sprintf("signing key %s is not trusted for any registry", p.id)}
	}
	if k.registry != registry {
		return k, &AuthError{AuthWrongRegistry, fmt.Sprintf("claims registry %q but is signed with a key of %q", registry, k.registry)}
	}
	if len(registry) > maxNameLen || len(source) > maxNameLen {
		return k, &AuthError{AuthBadSignature, "registry or source name too long to be signed"}
	}
	return k, nil
}

// verifyRoot checks that k signed root as the group (registry, source, n)
// of p, once per group.
func (v *Verifier) verifyRoot(k trustedKey, p header, registry, source string, root [32]byte) bool {
	g := groupID{key: p.id, registry: registry, source: source, n: uint16(p.n), root: root}
	v.mu.RLock()
	_, done := v.verified[g]
	v.mu.RUnlock()
	if done {
		return true
	}
	if !ed25519.Verify(k.pub, groupMessage(registry, source, p.n, root), p.sig) {
		return false
	}
	v.mu.Lock()
	if len(v.verified) >= maxVerifiedGroups {
		clear(v.verified)
	}
	v.verified[g] = struct{}{}
	v.mu.Unlock()
	return true
}

// maxPath is the longest audit path of a group (MaxGroupSize leaves).
const maxPath = 16

// step is one level of a leaf's way to the root: the subtree reached, the
// sibling subtree whose hash the audit path gives, and which side it is.
type step struct {
	parent, sibling uint32 // subtree positions, see pos
	siblingLeft     bool
}

// pos names the subtree of size leaves starting at leaf lo.
func pos(lo, size int) uint32 { return uint32(lo)<<16 | uint32(size) }

// shape lists the steps from leaf i of a tree of n leaves to its root,
// leaf upwards (the order of the audit path).
func shape(i, n int, buf *[maxPath]step) []step {
	d := pathLen(i, n)
	out := buf[:d]
	lo, size := 0, n
	for j := d - 1; j >= 0; j-- {
		k := 1 << (bits.Len(uint(size-1)) - 1)
		out[j].parent = pos(lo, size)
		if i-lo < k {
			out[j].sibling, out[j].siblingLeft = pos(lo+k, size-k), false
			size = k
		} else {
			out[j].sibling, out[j].siblingLeft = pos(lo, k), true
			lo, size = lo+k, size-k
		}
	}
	return out
}

// localGroup is what a batch proved of one group: its nodes by position,
// once a member's path led to the signed root.
type localGroup struct {
	nodes map[uint32][32]byte // nil until proved
}

// Verify checks that the record (seq, envelope) with header was published
// by registry's relay for source, or says why not.
func (v *Verifier) Verify(header []byte, seq int64, envelope []byte, registry, source string) *AuthError {
	p, err := parseHeader(header)
	if err != nil {
		return err
	}
	k, err := v.key(p, registry, source)
	if err != nil {
		return err
	}
	return v.single(&AuthRecord{header, seq, envelope, registry, source}, p, k, leafHash(seq, envelope))
}

// VerifyBatch checks recs and returns, per record, nil or why it failed;
// it decides each record as Verify alone would. The records of one group
// are checked together. A group the batch holds entirely (every leaf, no
// two different records at one place) is checked from its leaves: n-1
// inner hashes and one signature check (remembered) for n records.
// Otherwise the first record walks its whole path to the signed root and
// the others stop at the first node of their path the batch already
// proved at that place.
func (v *Verifier) VerifyBatch(recs []AuthRecord) []*AuthError {
	errs := make([]*AuthError, len(recs))
	type member struct {
		i    int32 // in recs
		leaf [32]byte
	}
	type bucket struct {
		p                header // of its first record
		k                trustedKey
		registry, source string
		slots            []int32 // member index per leaf, -1: absent
		filled           int
		mixed            bool
		members          []member
	}
	buckets := map[[74]byte]*bucket{}
	var order []*bucket
	for i := range recs {
		r := &recs[i]
		p, err := parseHeader(r.Header)
		var k trustedKey
		if err == nil {
			k, err = v.key(p, r.Registry, r.Source)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		var gk [74]byte
		copy(gk[:10], r.Header[1:11])
		copy(gk[10:], p.sig)
		b := buckets[gk]
		if b == nil {
			b = &bucket{p: p, k: k, registry: r.Registry, source: r.Source, slots: make([]int32, p.n), members: make([]member, 0, p.n)}
			for j := range b.slots {
				b.slots[j] = -1
			}
			buckets[gk] = b
			order = append(order, b)
		}
		m := member{i: int32(i), leaf: leafHash(r.Seq, r.Envelope)}
		switch s := b.slots[p.i]; {
		case r.Registry != b.registry || r.Source != b.source:
			b.mixed = true
		case s < 0:
			b.slots[p.i] = int32(len(b.members))
			b.filled++
		case b.members[s].leaf != m.leaf:
			b.mixed = true
		}
		b.members = append(b.members, m)
	}
	var leaves [][32]byte
	for _, b := range order {
		if !b.mixed && b.filled == len(b.slots) {
			leaves = leaves[:0]
			for _, s := range b.slots {
				leaves = append(leaves, b.members[s].leaf)
			}
			if v.verifyRoot(b.k, b.p, b.registry, b.source, treeRoot(leaves)) {
				continue
			}
		}
		var g localGroup
		for _, m := range b.members {
			r := &recs[m.i]
			p, _ := parseHeader(r.Header) // parsed once already
			if r.Registry != b.registry || r.Source != b.source {
				errs[m.i] = v.single(r, p, b.k, m.leaf) // the same signature claimed for another sequence
				continue
			}
			errs[m.i] = v.inGroup(&g, r, p, b.k, m.leaf)
		}
	}
	return errs
}

// treeRoot is the Merkle tree hash of leaves.
func treeRoot(leaves [][32]byte) [32]byte {
	n := len(leaves)
	if n == 1 {
		return leaves[0]
	}
	k := 1 << (bits.Len(uint(n-1)) - 1)
	left, right := treeRoot(leaves[:k]), treeRoot(leaves[k:])
	return nodeHash(&left, &right)
}

// inGroup checks r, a record of group g, against what the batch proved
// of g, and adds what r proves.
func (v *Verifier) inGroup(g *localGroup, r *AuthRecord, p header, k trustedKey, leaf [32]byte) *AuthError {
	var buf [maxPath]step
	var learned [2*maxPath + 1]struct {
		at   uint32
		hash [32]byte
	}
	node, at := leaf, pos(p.i, 1)
	learned[0].at, learned[0].hash = at, node
	nl := 1
	// proved reports whether the batch proved a node at this place:
	// then the record stands or falls with it.
	proved := func() (bool, bool) {
		h, ok := g.nodes[at]
		return ok, h == node
	}
	found, match := proved()
	for j, s := range shape(p.i, p.n, &buf) {
		if found {
			break
		}
		var sib [32]byte
		copy(sib[:], p.path[32*j:])
		if s.siblingLeft {
			node = nodeHash(&sib, &node)
		} else {
			node = nodeHash(&node, &sib)
		}
		at = s.parent
		learned[nl].at, learned[nl].hash = s.sibling, sib
		learned[nl+1].at, learned[nl+1].hash = at, node
		nl += 2
		found, match = proved()
	}
	switch {
	case found && !match:
		// It contradicts what the group's signature proved: judged alone,
		// it fails there too (one signature cannot cover two roots).
		return v.single(r, p, k, leaf)
	case !found:
		// Nothing of the group proved yet: node is the root.
		if !v.verifyRoot(k, p, r.Registry, r.Source, node) {
			return badSignature(r)
		}
		if g.nodes == nil {
			g.nodes = make(map[uint32][32]byte, min(2*p.n, 64))
		}
	}
	for _, l := range learned[:nl] {
		g.nodes[l.at] = l.hash
	}
	return nil
}

func badSignature(r *AuthRecord) *AuthError {
	return &AuthError{AuthBadSignature, fmt.Sprintf("signature of %s/%s does not cover sequence number %d with this envelope", r.Registry, r.Source, r.Seq)}
}

// single checks one record, whose leaf hash is leaf, through its whole
// audit path.
func (v *Verifier) single(r *AuthRecord, p header, k trustedKey, leaf [32]byte) *AuthError {
	var buf [maxPath]step
	node := leaf
	for j, s := range shape(p.i, p.n, &buf) {
		var sib [32]byte
		copy(sib[:], p.path[32*j:])
		if s.siblingLeft {
			node = nodeHash(&sib, &node)
		} else {
			node = nodeHash(&node, &sib)
		}
	}
	if !v.verifyRoot(k, p, r.Registry, r.Source, node) {
		return badSignature(r)
	}
	return nil
}
