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
		name     string
		cold     bool // checked with a verifier that has seen no group yet
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
		{"another record's header", false, hdrs[4], seqs[3], envs[3], "alpha-main", SourceTEG, AuthBadSignature},
		{"another source", false, hdrs[3], seqs[3], envs[3], "alpha-main", SourceRegistry, AuthBadSignature},
		{"signature bit flipped", true, flipSig, seqs[3], envs[3], "alpha-main", SourceTEG, AuthBadSignature},
		{"path bit flipped", false, flipPath, seqs[3], envs[3], "alpha-main", SourceTEG, AuthBadSignature},
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
				// Warm the cache with the genuine group first: a verified
				// root must not let anything else through. (A flipped
				// signature on a record whose path leads to a verified
				// root is accepted: the record is the genuine one.)
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

// Property: VerifyAll, which checks a group the batch holds entirely from
// its leaves, decides every record as Verify does on its own — with
// complete and partial groups, repeats, shuffling, and forgeries that copy
// a genuine group's signature.
func TestVerifyAllDecidesAsVerify(t *testing.T) {
	main, op1 := testKey(t, 1), testKey(t, 2)
	keys := TrustedKeys{"alpha-main": {main.Public().(ed25519.PublicKey)}, "alpha-op1": {op1.Public().(ed25519.PublicKey)}}
	rng := rand.New(rand.NewPCG(3, 9))
	for round := range 60 {
		var batch []AuthRecord
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
				if rng.IntN(10) == 0 {
					continue // missing: its group is partial
				}
				r := AuthRecord{Header: hdrs[i], Seq: seqs[i], Envelope: envs[i], Registry: src.registry, Source: SourceTEG}
				switch rng.IntN(14) {
				case 0: // altered, keeping the genuine header
					r.Envelope = append(bytes.Clone(envs[i]), ' ')
				case 1: // renumbered
					r.Seq += 7
				case 2: // claims the other registry
					r.Registry = "alpha-op1"
				case 3: // unsigned
					r.Header = nil
				case 4: // repeated
					batch = append(batch, r)
				case 5: // the genuine record and a forgery reusing its header
					forged := r
					forged.Envelope = append(bytes.Clone(envs[i]), ' ')
					batch = append(batch, forged)
				}
				batch = append(batch, r)
			}
		}
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		want := make([]*AuthError, len(batch))
		for i, r := range batch {
			want[i] = NewVerifier(keys).Verify(r.Header, r.Seq, r.Envelope, r.Registry, r.Source)
		}
		got := NewVerifier(keys).VerifyAll(batch)
		for i := range batch {
			if (got[i] == nil) != (want[i] == nil) || (got[i] != nil && got[i].Reason != want[i].Reason) {
				t.Fatalf("round %d record %d: VerifyAll %v, Verify %v", round, i, got[i], want[i])
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
	b.Run("per-record", func(b *testing.B) {
		// A fresh verifier per group: one signature check per 256 records.
		for b.Loop() {
			v := NewVerifier(pub)
			for i := range hdrs {
				if v.Verify(hdrs[i], seqs[i], envs[i], "alpha-main", SourceTEG) != nil {
					b.Fatal("refused")
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hdrs)), "ns/record")
	})
	b.Run("all", func(b *testing.B) {
		// The whole group in one batch: its root from the leaves.
		recs := make([]AuthRecord, len(hdrs))
		for b.Loop() {
			for i := range hdrs {
				recs[i] = AuthRecord{Header: hdrs[i], Seq: seqs[i], Envelope: envs[i], Registry: "alpha-main", Source: SourceTEG}
			}
			for _, err := range NewVerifier(pub).VerifyAll(recs) {
				if err != nil {
					b.Fatal(err)
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
