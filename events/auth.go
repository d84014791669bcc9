package events

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
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
// arrives in, and checks a group's signature once (Verifier caches the
// roots it verified). The envelope bytes are left as they are.
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
	h := sha256.New()
	var pre [9]byte
	binary.BigEndian.PutUint64(pre[1:], uint64(seq))
	h.Write(pre[:])
	h.Write(envelope)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

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

// rootFromPath recomputes the root from a leaf, its index i in a tree of n
// leaves and its audit path (RFC 9162 §2.1.3.2). ok is false when the path
// does not fit the tree's shape.
func rootFromPath(leaf [32]byte, i, n int, path []byte) (root [32]byte, ok bool) {
	fn, sn := uint(i), uint(n-1)
	r := leaf
	for len(path) >= 32 {
		var p [32]byte
		copy(p[:], path[:32])
		path = path[32:]
		if sn == 0 {
			return r, false
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(&p, &r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(&r, &p)
		}
		fn >>= 1
		sn >>= 1
	}
	return r, sn == 0 && len(path) == 0
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

// maxVerifiedGroups bounds the cache of verified groups (a relay batch of
// 5,000 records is 20 groups; several batches of every source of the
// frame fit many times over). When full it is emptied: the next record of
// each group costs one signature check again.
const maxVerifiedGroups = 1 << 14

// Verifier checks records against the trusted keys. It is safe for
// concurrent use.
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

// AuthRecord is one record to authenticate: its HeaderAuth value, the
// sequence number it was published under, the envelope bytes and the
// registry and source the envelope names.
type AuthRecord struct {
	Header   []byte
	Seq      int64
	Envelope []byte
	Registry string
	Source   string
	leaf     [32]byte
	hashed   bool
}

// HashLeaf computes the record's leaf hash, the largest cost of checking
// it; VerifyAll computes what is not yet, so callers may spread this over
// cores first.
func (r *AuthRecord) HashLeaf() {
	r.leaf, r.hashed = leafHash(r.Seq, r.Envelope), true
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

// key finds the trusted key of a header for registry.
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

// verifyGroup checks a group's signature over root, once per group.
func (v *Verifier) verifyGroup(k trustedKey, p header, registry, source string, root [32]byte) bool {
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

// Verify checks that the record (seq, envelope) with header was published
// by registry's relay for source, or says why not.
func (v *Verifier) Verify(header []byte, seq int64, envelope []byte, registry, source string) *AuthError {
	r := AuthRecord{Header: header, Seq: seq, Envelope: envelope, Registry: registry, Source: source}
	return v.verifyOne(&r)
}

// verifyOne checks one record through its audit path.
func (v *Verifier) verifyOne(r *AuthRecord) *AuthError {
	p, err := parseHeader(r.Header)
	if err != nil {
		return err
	}
	k, err := v.key(p, r.Registry, r.Source)
	if err != nil {
		return err
	}
	if !r.hashed {
		r.HashLeaf()
	}
	root, ok := rootFromPath(r.leaf, p.i, p.n, p.path)
	if !ok {
		return &AuthError{AuthMalformed, "audit path does not fit the group"}
	}
	if !v.verifyGroup(k, p, r.Registry, r.Source, root) {
		return &AuthError{AuthBadSignature, fmt.Sprintf("signature of %s/%s does not cover sequence number %d with this envelope", r.Registry, r.Source, r.Seq)}
	}
	return nil
}

// bucketKey is what one group's records share in their headers: key ID,
// size and signature.
type bucketKey [8 + 2 + 64]byte

// bucket gathers the records of one group found in a batch.
type bucket struct {
	p        header
	k        trustedKey
	registry string
	source   string
	slots    []int32 // record index per leaf index, -1: absent
	filled   int
	members  []int32 // every record of the group, repeats included
	mixed    bool    // two different leaves at one index, or another registry/source
}

// VerifyAll checks recs and returns, per record, nil or why it failed.
// Records of a group that the batch holds entirely are checked together:
// the root is computed once from their leaves (n-1 inner hashes instead
// of ~8 per record along the audit paths) and its signature once. The
// others, and every record of a group that fails, are checked one by one.
func (v *Verifier) VerifyAll(recs []AuthRecord) []*AuthError {
	errs := make([]*AuthError, len(recs))
	buckets := map[bucketKey]*bucket{}
	var single []int32
	for i := range recs {
		r := &recs[i]
		p, err := parseHeader(r.Header)
		if err == nil {
			_, err = v.key(p, r.Registry, r.Source)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		if !r.hashed {
			r.HashLeaf()
		}
		var bk bucketKey
		copy(bk[:10], r.Header[1:11])
		copy(bk[10:], p.sig)
		b := buckets[bk]
		if b == nil {
			b = &bucket{p: p, k: v.keys[p.id], registry: r.Registry, source: r.Source, slots: make([]int32, p.n)}
			for j := range b.slots {
				b.slots[j] = -1
			}
			buckets[bk] = b
		}
		b.members = append(b.members, int32(i))
		switch s := b.slots[p.i]; {
		case r.Registry != b.registry || r.Source != b.source:
			b.mixed = true
		case s < 0:
			b.slots[p.i] = int32(i)
			b.filled++
		case recs[s].leaf != r.leaf:
			b.mixed = true
		}
	}
	leaves := make([][32]byte, 0, DefaultGroupSize)
	for _, b := range buckets {
		if !b.mixed && b.filled == b.p.n {
			leaves = leaves[:0]
			for _, s := range b.slots {
				leaves = append(leaves, recs[s].leaf)
			}
			if v.verifyGroup(b.k, b.p, b.registry, b.source, treeRoot(leaves)) {
				continue
			}
		}
		single = append(single, b.members...)
	}
	for _, i := range single {
		errs[i] = v.verifyOne(&recs[i])
	}
	return errs
}

// treeRoot is buildTree without the paths.
func treeRoot(leaves [][32]byte) [32]byte {
	n := len(leaves)
	if n == 1 {
		return leaves[0]
	}
	k := 1 << (bits.Len(uint(n-1)) - 1)
	left, right := treeRoot(leaves[:k]), treeRoot(leaves[k:])
	return nodeHash(&left, &right)
}
