// Package money is integer arithmetic on amounts in base units (SPEC §4):
// 1 AVT = 10^8 units, held in int64. Every operation checks for overflow and
// returns ErrOverflow instead of wrapping; there are no floats anywhere.
//
// Rounding rules (written down, tested): fees round UP to the next base unit
// (FeeBps, MulDivUp), rewards round DOWN (MulDivDown); whatever rounding leaves
// over stays with the payer or the pool, so sums stay exact.
//
// Pure Go, stdlib only.
package money

import (
	"errors"
	"math"
	"math/bits"
	"strings"
)

// Decimals is the number of decimal places of one whole token.
const Decimals = 8

// UnitsPerToken is 10^Decimals: base units in one AVT (or any frame currency).
const UnitsPerToken int64 = 100_000_000

// MaxUnits is the largest representable amount.
const MaxUnits int64 = math.MaxInt64

// BasisPointsPerWhole is 100% in basis points.
const BasisPointsPerWhole int64 = 10_000

var (
	// ErrOverflow means the exact result does not fit in int64.
	ErrOverflow = errors.New("money: amount overflows int64")
	// ErrNegative means an argument that must be non-negative was negative.
	ErrNegative = errors.New("money: negative amount")
	// ErrDivByZero means a zero denominator.
	ErrDivByZero = errors.New("money: division by zero")
	// ErrSyntax means a decimal string could not be parsed.
	ErrSyntax = errors.New("money: invalid decimal amount")
	// ErrPrecision means a decimal string has more than Decimals places.
	ErrPrecision = errors.New("money: more than 8 decimal places")
)

// Add returns a+b or ErrOverflow.
func Add(a, b int64) (int64, error) {
	s := a + b
	// Overflow iff both operands have the same sign and the sum's sign differs.
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, ErrOverflow
	}
	return s, nil
}

// Sub returns a-b or ErrOverflow.
func Sub(a, b int64) (int64, error) {
	d := a - b
	if (a >= 0) != (b >= 0) && (d >= 0) != (a >= 0) {
		return 0, ErrOverflow
	}
	return d, nil
}

// Sum adds all amounts, failing on the first overflow.
func Sum(amounts ...int64) (int64, error) {
	var t int64
	var err error
	for _, a := range amounts {
		if t, err = Add(t, a); err != nil {
			return 0, err
		}
	}
	return t, nil
}

// MulDivDown returns floor(a*num/den) computed exactly with a 128-bit
// intermediate. a and num must be non-negative, den positive.
func MulDivDown(a, num, den int64) (int64, error) {
	q, _, err := mulDiv(a, num, den)
	return q, err
}

// MulDivUp returns ceil(a*num/den) computed exactly with a 128-bit
// intermediate. a and num must be non-negative, den positive.
func MulDivUp(a, num, den int64) (int64, error) {
	q, r, err := mulDiv(a, num, den)
	if err != nil {
		return 0, err
	}
	if r != 0 {
		return Add(q, 1)
	}
	return q, nil
}

func mulDiv(a, num, den int64) (q int64, rem uint64, err error) {
	switch {
	case den <= 0:
		return 0, 0, ErrDivByZero
	case a < 0 || num < 0:
		return 0, 0, ErrNegative
	}
	hi, lo := bits.Mul64(uint64(a), uint64(num))
	if hi >= uint64(den) { // the quotient would not fit in 64 bits
		return 0, 0, ErrOverflow
	}
	uq, r := bits.Div64(hi, lo, uint64(den))
	if uq > uint64(math.MaxInt64) {
		return 0, 0, ErrOverflow
	}
	return int64(uq), r, nil
}

// FeeBps returns the fee on amount at bps basis points, rounded UP to the
// next base unit: ceil(amount*bps/10000). A positive rate on a positive
// amount therefore always charges at least one unit. amount and bps must be
// non-negative.
func FeeBps(amount, bps int64) (int64, error) {
	return MulDivUp(amount, bps, BasisPointsPerWhole)
}

// Parse converts a decimal string ("12", "12.5", "0.00000001", "-3.25") into
// base units. At most Decimals fractional digits are accepted (no silent
// rounding); no exponent, no thousands separators, no leading '+', no
// surrounding spaces. Values outside int64 return ErrOverflow.
func Parse(s string) (int64, error) {
	if s == "" || len(s) > 40 {
		return 0, ErrSyntax
	}
	neg := false
	if s[0] == '-' {
		neg = true
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") {
		return 0, ErrSyntax
	}
	if len(frac) > Decimals {
		return 0, ErrPrecision
	}
	// Accumulate as a negative number so MinInt64 parses too.
	var v int64
	digit := func(c byte) error {
		if c < '0' || c > '9' {
			return ErrSyntax
		}
		if v < (math.MinInt64+int64(c-'0'))/10 {
			return ErrOverflow
		}
		v = v*10 - int64(c-'0')
		return nil
	}
	for i := 0; i < len(intPart); i++ {
		if err := digit(intPart[i]); err != nil {
			return 0, err
		}
	}
	for i := 0; i < Decimals; i++ {
		c := byte('0')
		if i < len(frac) {
			c = frac[i]
		}
		if err := digit(c); err != nil {
			return 0, err
		}
	}
	if neg {
		return v, nil
	}
	if v == math.MinInt64 {
		return 0, ErrOverflow
	}
	return -v, nil
}

// Format renders units as a decimal string with trailing fractional zeros
// trimmed: 1250000000 → "12.5", 100000000 → "1", 1 → "0.00000001".
// Format(Parse(s)) is the canonical form of s.
func Format(units int64) string {
	neg := units < 0
	// Work in uint64 so MinInt64 has a magnitude.
	mag := uint64(units)
	if neg {
		mag = -mag
	}
	whole := mag / uint64(UnitsPerToken)
	frac := mag % uint64(UnitsPerToken)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(utoa(whole))
	if frac != 0 {
		f := utoa(frac)
		f = strings.Repeat("0", Decimals-len(f)) + f
		b.WriteByte('.')
		b.WriteString(strings.TrimRight(f, "0"))
	}
	return b.String()
}

func utoa(u uint64) string {
	if u == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for u > 0 {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
	}
	return string(buf[i:])
}
