package ingest_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
)

// The test registries' event signing keys (fixed seeds) and the trust the
// tests' EventStores place in them: every relay and record fixture of
// these tests signs through testSigner or signRecords.
var testKeys = map[string]ed25519.PrivateKey{
	"alpha-main": ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)),
	"alpha-op1":  ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize)),
}

func testTrust() (events.TrustedKeys, error) {
	keys := events.TrustedKeys{}
	for r, k := range testKeys {
		keys[r] = []ed25519.PublicKey{k.Public().(ed25519.PublicKey)}
	}
	return keys, nil
}

func testSigner(registry string) *events.Signer { return events.NewSigner(testKeys[registry]) }

// signRecords signs recs as their registries' relays would: each source's
// records in groups, in the order given, per partition when partition
// (record index → partition) is given; a repeated record (same source and
// sequence number) gets its first copy's header, as a redelivery has.
func signRecords(tb testing.TB, recs []ingest.Record, partition func(i int) int) []ingest.Record {
	tb.Helper()
	type source struct {
		registry, source string
		partition        int
	}
	type numbered struct {
		registry, source string
		seq              int64
	}
	type group struct {
		seqs []int64
		envs [][]byte
		at   []int
	}
	out := append([]ingest.Record(nil), recs...)
	groups := map[source]*group{}
	var order []source
	firstOf := make(map[numbered]int, len(recs))
	copyOf := make([]int, len(recs))
	for i, r := range out {
		var env struct{ Registry, Source string }
		require.NoError(tb, json.Unmarshal(r.Value, &env))
		n := numbered{env.Registry, env.Source, r.SourceSeq}
		if j, ok := firstOf[n]; ok {
			copyOf[i] = j
			continue
		}
		firstOf[n], copyOf[i] = i, i
		k := source{registry: env.Registry, source: env.Source}
		if partition != nil {
			k.partition = partition(i)
		}
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
			order = append(order, k)
		}
		g.seqs, g.envs, g.at = append(g.seqs, r.SourceSeq), append(g.envs, r.Value), append(g.at, i)
	}
	for _, k := range order {
		g := groups[k]
		hdrs, err := testSigner(k.registry).Sign(k.registry, k.source, g.seqs, g.envs)
		require.NoError(tb, err)
		for j, i := range g.at {
			out[i].Auth = hdrs[j]
		}
	}
	for i := range out {
		out[i].Auth = out[copyOf[i]].Auth
	}
	return out
}
