package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// SegmentCodec names the segment encoding: the envelopes of one batch, each
// as a uvarint length followed by the envelope's JSON bytes exactly as
// received, concatenated and compressed with zstd.
const SegmentCodec = "zstd-uvarint-v1"

// maxSegmentBytes bounds a decompressed segment (a MaxBatch of envelopes
// stays far below it, Kafka's record size limits them); decoding a corrupt
// segment stops there instead of exhausting memory.
const maxSegmentBytes = 1 << 30

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// codecs returns the shared encoder and decoder (EncodeAll and DecodeAll
// are safe for concurrent use).
func codecs() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		// The fastest level: segments are written on the ingest path and
		// read only by replays, and it already shrinks envelopes ~7×.
		zstdEnc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxSegmentBytes))
	})
	return zstdEnc, zstdDec, zstdErr
}

// encodeSegment packs bodies into one compressed segment.
func encodeSegment(bodies [][]byte) ([]byte, error) {
	enc, _, err := codecs()
	if err != nil {
		return nil, err
	}
	size := 0
	for _, b := range bodies {
		size += binary.MaxVarintLen64 + len(b)
	}
	plain := make([]byte, 0, size)
	for _, b := range bodies {
		plain = binary.AppendUvarint(plain, uint64(len(b)))
		plain = append(plain, b...)
	}
	return enc.EncodeAll(plain, make([]byte, 0, len(plain)/4)), nil
}

// decodeSegment unpacks a segment written by encodeSegment and checks that
// it holds exactly want bodies. The bodies alias one decompressed buffer.
func decodeSegment(data []byte, want int) ([][]byte, error) {
	_, dec, err := codecs()
	if err != nil {
		return nil, err
	}
	plain, err := dec.DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress segment: %w", err)
	}
	bodies := make([][]byte, 0, want)
	for len(plain) > 0 {
		n, k := binary.Uvarint(plain)
		if k <= 0 || n > uint64(len(plain)-k) {
			return nil, errors.New("corrupt segment: bad body length")
		}
		bodies = append(bodies, plain[k:k+int(n)])
		plain = plain[k+int(n):]
	}
	if len(bodies) != want {
		return nil, fmt.Errorf("corrupt segment: %d bodies, header says %d", len(bodies), want)
	}
	return bodies, nil
}
