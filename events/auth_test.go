package events

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"testing"
)

func testKey(t testing.TB, seed byte) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// group makes n records of a source: sequence numbers from first, distinct
// envelope bytes.
func group(first int64, n int) ([]int64, [][]byte) {
	seqs := make([]int64, n)
	envs := make([][]byte, n)
	for i := range n {
		seqs[i] = first + int64(i)
		envs[i] = fmt.Appendf(nil, `{"idempotency_key":"k-%d","registry":"alpha-main"}`, first+int64(i))
	}
	return seqs, envs
}

// rootFromPath is the reference verification of RFC 9162 §2.1.3.2: it
// recomputes the root from a leaf, its index i in a tree of n
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

// Every tree size up to a few groups: each leaf's path has the length
// pathLen predicts and leads back to the root buildTree computed.
func TestMerklePathsLeadToTheRoot(t *testing.T) {
	for n := 1; n <= 300; n++ {
		leaves := make([][32]byte, n)
		for i := range leaves {
			leaves[i] = leafHash(int64(i), []byte{byte(i)})
		}
		paths := make([][][32]byte, n)
		root := buildTree(leaves, paths)
		for i := range n {
			if got := pathLen(i, n); got != len(paths[i]) {
				t.Fatalf("n=%d i=%d: pathLen %d, path has %d nodes", n, i, got, len(paths[i]))
			}
			var flat []byte
			for _, p := range paths[i] {
				flat = append(flat, p[:]...)
			}
			r, ok := rootFromPath(leaves[i], i, n, flat)
			if !ok || r != root {
				t.Fatalf("n=%d i=%d: path does not lead to the root", n, i)
			}
			// The same path from another leaf, or for another index, fails.
			if n > 1 {
				other := (i + 1) % n
				if r, ok := rootFromPath(leaves[other], i, n, flat); ok && r == root {
					t.Fatalf("n=%d i=%d: another leaf verified with this path", n, i)
				}
				if r, ok := rootFromPath(leaves[i], other, n, flat); ok && r == root {
					t.Fatalf("n=%d i=%d: the path verified at index %d", n, i, other)
				}
			}
		}
	}
}

// Property: whatever the batch and group sizes, every signed record
// verifies on its own, in any order, with a fresh verifier or a warm one.
func TestSignedRecordsVerifyInAnyOrder(t *testing.T) {
	key := testKey(t, 1)
	rng := rand.New(rand.NewPCG(7, 7))
	for range 40 {
		n := 1 + rng.IntN(700)
		s := NewSigner(key)
		s.GroupSize = []int{1, 2, 3, 7, 64, DefaultGroupSize}[rng.IntN(6)]
		first := 1 + rng.Int64N(1<<40)
		seqs, envs := group(first, n)
		hdrs, err := s.Sign("alpha-main", SourceTEG, seqs, envs)
		if err != nil {
			t.Fatal(err)
		}
		v := NewVerifier(TrustedKeys{"alpha-main": {s.Public()}})
		for _, i := range rng.Perm(n) {
			if err := v.Verify(hdrs[i], seqs[i], envs[i], "alpha-main", SourceTEG); err != nil {
				t.Fatalf("n=%d group=%d record %d: %v", n, s.GroupSize, i, err)
			}
			cold := NewVerifier(TrustedKeys{"alpha-main": {s.Public()}})
			if err := cold.Verify(hdrs[i], seqs[i], envs[i], "alpha-main", SourceTEG); err != nil {
				t.Fatalf("n=%d group=%d record %d, cold verifier: %v", n, s.GroupSize, i, err)
			}
		}
	}
}

func TestVerifyRefusesWhatWasNotSigned(t *testing.T) {
	main, op1, stranger := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	s := NewSigner(main)
	seqs, envs := group(41, 10)
	hdrs, err := s.Sign("alpha-main", SourceTEG, seqs, envs)
	if err != nil {
		t.Fatal(err)
	}
	byOp1, err := NewSigner(op1).Sign("alpha-op1", SourceTEG, seqs, envs)
	if err != nil {
		t.Fatal(err)
	}
	byStranger, err := NewSigner(stranger).Sign("alpha-main", SourceTEG, seqs, envs)
	if err != nil {
		t.Fatal(err)
	}
	keys := TrustedKeys{"alpha-main": {s.Public()}, "alpha-op1": {op1.Public().(ed25519.PublicKey)}}
	altered := bytes.Clone(envs[3])
	altered[len(altered)-3] ^= 1
	flipSig := bytes.Clone(hdrs[3])
	flipSig[20] ^= 1
	flipPath := bytes.Clone(hdrs[3])
	flipPath[len(flipPath)-1] ^= 1
	badVersion := bytes.Clone(hdrs[3])
	badVersion[0] = 2
	badIndex := bytes.Clone(hdrs[3])
	badIndex[11], badIndex[12] = 0, 10 // leaf 10 of 10
	for _, c := range []struct {
		name string
		// cold: checked with a verifier that has checked no group yet (a
		// record whose path leads to a root already checked is accepted
		// whatever its signature bytes: it is the genuine record).
		cold     bool
		header   []byte
		seq      int64
		env      []byte
		registry string
		source   string
		want     AuthReason
	}{
		{"no header", false, nil, seqs[3], envs[3], "alpha-main", SourceTEG, AuthUnsigned},
		{"altered envelope", false, hdrs[3], seqs[3], altered, "alpha-main", SourceTEG, AuthBadSignature},
		{"renumbered", false, hdrs[3], seqs[3] + 1_000_000, envs[3], "alpha-main", SourceTEG, AuthBadSignature},
		{"another record's header", true, hdrs[4], seqs[3], envs[3], "alpha-main", SourceTEG, AuthBadSignature},
		{"another source", true, hdrs[3], seqs[3], envs[3], "alpha-main", SourceRegistry, AuthBadSignature},
		{"signature bit flipped", true, flipSig, seqs[3], envs[3], "alpha-main", SourceTEG, AuthBadSignature},
		{"path bit flipped", true, flipPath, seqs[3], envs[3], "alpha-main", SourceTEG, AuthBadSignature},
		{"truncated header", false, hdrs[3][:len(hdrs[3])-1], seqs[3], envs[3], "alpha-main", SourceTEG, AuthMalformed},
		{"short header", false, hdrs[3][:40], seqs[3], envs[3], "alpha-main", SourceTEG, AuthMalformed},
		{"unknown version", false, badVersion, seqs[3], envs[3], "alpha-main", SourceTEG, AuthMalformed},
		{"index past the group", false, badIndex, seqs[3], envs[3], "alpha-main", SourceTEG, AuthMalformed},
		{"untrusted key", false, byStranger[3], seqs[3], envs[3], "alpha-main", SourceTEG, AuthUnknownKey},
		{"another registry's key", false, byOp1[3], seqs[3], envs[3], "alpha-main", SourceTEG, AuthWrongRegistry},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := NewVerifier(keys)
			if !c.cold {
				// Prove the genuine record first: what it proved must not
				// let anything else through.
				if err := v.Verify(hdrs[3], seqs[3], envs[3], "alpha-main", SourceTEG); err != nil {
					t.Fatal(err)
				}
			}
			err := v.Verify(c.header, c.seq, c.env, c.registry, c.source)
			if err == nil {
				t.Fatalf("accepted")
			}
			if err.Reason != c.want {
				t.Fatalf("reason %d (%v), want %d", err.Reason, err, c.want)
			}
		})
	}
	// op1's own records verify as op1's.
	if err := NewVerifier(keys).Verify(byOp1[3], seqs[3], envs[3], "alpha-op1", SourceTEG); err != nil {
		t.Fatal(err)
	}
}

// Property: VerifyBatch decides every record as Verify does alone on a
// fresh verifier, whether the records come in one batch or spread over
// several on one verifier — with whole and partial groups of two
// registries, repeats, shuffling, and forgeries that reuse a genuine
// record's header — and never accepts what was not signed.
func TestVerifyBatchDecidesAsVerify(t *testing.T) {
	main, op1 := testKey(t, 1), testKey(t, 2)
	keys := TrustedKeys{"alpha-main": {main.Public().(ed25519.PublicKey)}, "alpha-op1": {op1.Public().(ed25519.PublicKey)}}
	rng := rand.New(rand.NewPCG(3, 9))
	type rec struct {
		header   []byte
		seq      int64
		env      []byte
		registry string
	}
	type signed struct {
		registry string
		seq      int64
		env      string
	}
	for round := range 40 {
		var batch []rec
		genuine := map[signed]bool{}
		for _, src := range []struct {
			key      ed25519.PrivateKey
			registry string
		}{{main, "alpha-main"}, {op1, "alpha-op1"}} {
			s := NewSigner(src.key)
			s.GroupSize = 1 + rng.IntN(40)
			seqs, envs := group(1+rng.Int64N(1000), 1+rng.IntN(120))
			hdrs, err := s.Sign(src.registry, SourceTEG, seqs, envs)
			if err != nil {
				t.Fatal(err)
			}
			for i := range seqs {
				genuine[signed{src.registry, seqs[i], string(envs[i])}] = true
				if rng.IntN(10) == 0 {
					continue // missing: its group is partial
				}
				r := rec{hdrs[i], seqs[i], envs[i], src.registry}
				switch rng.IntN(16) {
				case 0: // altered, keeping the genuine header
					r.env = append(bytes.Clone(envs[i]), ' ')
				case 1: // renumbered
					r.seq += 7
				case 2: // claims the other registry
					r.registry = "alpha-op1"
				case 3: // unsigned
					r.header = nil
				case 4: // repeated
					batch = append(batch, r)
				case 5: // the genuine record and a forgery reusing its header
					forged := r
					forged.env = append(bytes.Clone(envs[i]), ' ')
					batch = append(batch, forged)
				case 6: // another record's header
					r.header = hdrs[(i+1)%len(hdrs)]
				case 7: // the other registry signs an envelope under this number, then it is passed off as ours
					other, otherReg := op1, "alpha-op1"
					if src.registry == "alpha-op1" {
						other, otherReg = main, "alpha-main"
					}
					env := append(bytes.Clone(envs[i]), '!')
					h, err := NewSigner(other).Sign(otherReg, SourceTEG, []int64{seqs[i]}, [][]byte{env})
					if err != nil {
						t.Fatal(err)
					}
					genuine[signed{otherReg, seqs[i], string(env)}] = true
					batch = append(batch, rec{h[0], seqs[i], env, otherReg}, rec{hdrs[i], seqs[i], env, src.registry})
				}
				batch = append(batch, r)
			}
		}
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		recs := make([]AuthRecord, len(batch))
		for i, r := range batch {
			recs[i] = AuthRecord{Header: r.header, Seq: r.seq, Envelope: r.env, Registry: r.registry, Source: SourceTEG}
		}
		whole := NewVerifier(keys).VerifyBatch(recs)
		spread := make([]*AuthError, 0, len(recs))
		warm := NewVerifier(keys)
		for lo := 0; lo < len(recs); {
			hi := min(len(recs), lo+1+rng.IntN(50))
			spread = append(spread, warm.VerifyBatch(recs[lo:hi])...)
			lo = hi
		}
		for i, r := range batch {
			want := NewVerifier(keys).Verify(r.header, r.seq, r.env, r.registry, SourceTEG)
			if want == nil && !genuine[signed{r.registry, r.seq, string(r.env)}] {
				t.Fatalf("round %d record %d: accepted what was not signed", round, i)
			}
			for name, got := range map[string]*AuthError{"one batch": whole[i], "several batches": spread[i]} {
				if (got == nil) != (want == nil) || (got != nil && got.Reason != want.Reason) {
					t.Fatalf("round %d record %d, %s: %v, alone: %v", round, i, name, got, want)
				}
			}
		}
	}
}

// Each of a registry's keys is trusted while it is rotated.
func TestVerifyTrustsEveryKeyOfARegistry(t *testing.T) {
	old, cur := testKey(t, 1), testKey(t, 2)
	v := NewVerifier(TrustedKeys{"alpha-main": {old.Public().(ed25519.PublicKey), cur.Public().(ed25519.PublicKey)}})
	seqs, envs := group(1, 3)
	for _, k := range []ed25519.PrivateKey{old, cur} {
		hdrs, err := NewSigner(k).Sign("alpha-main", SourceTEG, seqs, envs)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(hdrs[1], seqs[1], envs[1], "alpha-main", SourceTEG); err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkVerifyGroup(b *testing.B) {
	s := NewSigner(testKey(b, 1))
	seqs, envs := group(1, DefaultGroupSize)
	for i := range envs {
		envs[i] = append(envs[i], bytes.Repeat([]byte{'x'}, 600)...) // ~670 bytes, as the ledger's
	}
	hdrs, err := s.Sign("alpha-main", SourceTEG, seqs, envs)
	if err != nil {
		b.Fatal(err)
	}
	pub := TrustedKeys{"alpha-main": {s.Public()}}
	b.Run("leaf", func(b *testing.B) {
		// The part no scheme avoids: hashing each envelope.
		for b.Loop() {
			for i := range hdrs {
				leafHash(seqs[i], envs[i])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hdrs)), "ns/record")
	})
	b.Run("batch", func(b *testing.B) {
		// The group in one batch, on a fresh verifier: one signature
		// check, then about one inner hash per record.
		recs := make([]AuthRecord, len(hdrs))
		for i := range hdrs {
			recs[i] = AuthRecord{Header: hdrs[i], Seq: seqs[i], Envelope: envs[i], Registry: "alpha-main", Source: SourceTEG}
		}
		for b.Loop() {
			for _, err := range NewVerifier(pub).VerifyBatch(recs) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hdrs)), "ns/record")
	})
	b.Run("alone", func(b *testing.B) {
		// Each record on its own, its group's signature already checked:
		// the whole path.
		v := NewVerifier(pub)
		for b.Loop() {
			for i := range hdrs {
				if v.Verify(hdrs[i], seqs[i], envs[i], "alpha-main", SourceTEG) != nil {
					b.Fatal("refused")
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hdrs)), "ns/record")
	})
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Sign("alpha-main", SourceTEG, seqs, envs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hdrs)), "ns/record")
	})
}
