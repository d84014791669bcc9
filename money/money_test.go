package money_test

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/money"
)

func TestAddSub(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b       int64
		add, sub   int64
		addE, subE error
	}{
		{1, 2, 3, -1, nil, nil},
		{math.MaxInt64, 1, 0, math.MaxInt64 - 1, money.ErrOverflow, nil},
		{math.MaxInt64, 0, math.MaxInt64, math.MaxInt64, nil, nil},
		{math.MinInt64, -1, 0, math.MinInt64 + 1, money.ErrOverflow, nil},
		{math.MinInt64, 1, math.MinInt64 + 1, 0, nil, money.ErrOverflow},
		{0, math.MinInt64, math.MinInt64, 0, nil, money.ErrOverflow},
		{-1, math.MinInt64, 0, math.MaxInt64, money.ErrOverflow, nil},
		{math.MaxInt64, math.MinInt64, -1, 0, nil, money.ErrOverflow},
	}
	for _, c := range cases {
		got, err := money.Add(c.a, c.b)
		require.ErrorIs(t, err, c.addE, "Add(%d,%d)", c.a, c.b)
		if c.addE == nil {
			require.Equal(t, c.add, got)
		}
		got, err = money.Sub(c.a, c.b)
		require.ErrorIs(t, err, c.subE, "Sub(%d,%d)", c.a, c.b)
		if c.subE == nil {
			require.Equal(t, c.sub, got)
		}
	}
	_, err := money.Sum(math.MaxInt64-1, 1, 1)
	require.ErrorIs(t, err, money.ErrOverflow)
	s, err := money.Sum(5, -3, 10)
	require.NoError(t, err)
	require.Equal(t, int64(12), s)
}

func TestMulDiv(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, num, den int64
		down, up    int64
		err         error
	}{
		{10, 1, 3, 3, 4, nil},
		{9, 1, 3, 3, 3, nil},
		{0, 5, 7, 0, 0, nil},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, nil}, // 128-bit intermediate
		{math.MaxInt64, 2, 1, 0, 0, money.ErrOverflow},
		{1, 1, 0, 0, 0, money.ErrDivByZero},
		{-1, 1, 1, 0, 0, money.ErrNegative},
		{1, -1, 1, 0, 0, money.ErrNegative},
	}
	for _, c := range cases {
		d, err := money.MulDivDown(c.a, c.num, c.den)
		require.ErrorIs(t, err, c.err)
		u, err2 := money.MulDivUp(c.a, c.num, c.den)
		require.ErrorIs(t, err2, c.err)
		if c.err == nil {
			require.Equal(t, c.down, d, "down %d*%d/%d", c.a, c.num, c.den)
			require.Equal(t, c.up, u, "up %d*%d/%d", c.a, c.num, c.den)
		}
	}
}

func TestFeeBpsRoundsUp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		amount, bps, fee int64
	}{
		{100_000_000, 50, 500_000},             // 1 AVT at 0.5% = 0.005 AVT exactly
		{1, 50, 1},                             // tiniest amount still pays one unit
		{199, 50, 1},                           // 0.995 → 1
		{200, 50, 1},                           // exactly 1
		{201, 50, 2},                           // 1.005 → 2
		{12_345_678_901, 50, 61_728_395},       // 61728394.505 → 61728395
		{12_345_678_901, 500, 617_283_946},     // 617283945.05 → 617283946
		{math.MaxInt64, 10_000, math.MaxInt64}, // 100% of the largest amount fits
		{0, 50, 0},
		{1000, 0, 0},
	}
	for _, c := range cases {
		fee, err := money.FeeBps(c.amount, c.bps)
		require.NoError(t, err)
		require.Equal(t, c.fee, fee, "fee(%d, %d bps)", c.amount, c.bps)
	}
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	ok := []struct {
		in    string
		units int64
		canon string
	}{
		{"0", 0, "0"},
		{"1", 100_000_000, "1"},
		{"12.5", 1_250_000_000, "12.5"},
		{"12.50000000", 1_250_000_000, "12.5"},
		{"0.00000001", 1, "0.00000001"},
		{"-3.25", -325_000_000, "-3.25"},
		{"007", 700_000_000, "7"},
		{"92233720368.54775807", math.MaxInt64, "92233720368.54775807"},
		{"-92233720368.54775808", math.MinInt64, "-92233720368.54775808"},
	}
	for _, c := range ok {
		u, err := money.Parse(c.in)
		require.NoError(t, err, c.in)
		require.Equal(t, c.units, u, c.in)
		require.Equal(t, c.canon, money.Format(u))
	}
	bad := []struct {
		in  string
		err error
	}{
		{"", money.ErrSyntax},
		{"1.", money.ErrSyntax},
		{".5", money.ErrSyntax},
		{"1e8", money.ErrSyntax},
		{"+1", money.ErrSyntax},
		{" 1", money.ErrSyntax},
		{"1,000", money.ErrSyntax},
		{"--1", money.ErrSyntax},
		{"0.000000001", money.ErrPrecision},
		{"92233720368.54775808", money.ErrOverflow},
		{"-92233720368.54775809", money.ErrOverflow},
		{"99999999999999999999", money.ErrOverflow},
		{"NaN", money.ErrSyntax},
	}
	for _, c := range bad {
		_, err := money.Parse(c.in)
		require.ErrorIs(t, err, c.err, "%q", c.in)
	}
}

func FuzzParseFormat(f *testing.F) {
	for _, s := range []string{"0", "1.5", "-0.00000001", "92233720368.54775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := money.Parse(s)
		if err != nil {
			return
		}
		back, err := money.Parse(money.Format(u))
		if err != nil || back != u {
			t.Fatalf("round trip of %q: %d → %q → %d (%v)", s, u, money.Format(u), back, err)
		}
	})
}

// refParse is an independent reading of Parse's contract on math/big: an
// optional '-', one or more digits, optionally '.' and one to Decimals more
// digits, at most 40 bytes, scaled by 10^Decimals and within int64. It does
// not share Parse's negative accumulation, so an off-by-one at the int64
// edges or a wrong scale shows up as a disagreement.
func refParse(s string) (int64, error) {
	if s == "" || len(s) > 40 {
		return 0, money.ErrSyntax
	}
	body := strings.TrimPrefix(s, "-")
	intPart, frac, hasDot := strings.Cut(body, ".")
	isDigits := func(x string) bool { return x != "" && strings.Trim(x, "0123456789") == "" }
	if !isDigits(intPart) || (hasDot && !isDigits(frac)) {
		return 0, money.ErrSyntax
	}
	if len(frac) > money.Decimals {
		return 0, money.ErrPrecision
	}
	v, ok := new(big.Int).SetString(intPart+frac+strings.Repeat("0", money.Decimals-len(frac)), 10)
	if !ok {
		return 0, money.ErrSyntax
	}
	if body != s {
		v.Neg(v)
	}
	if !v.IsInt64() {
		return 0, money.ErrOverflow
	}
	return v.Int64(), nil
}

// FuzzParse checks Parse against refParse: both accept the same strings
// with the same value, and every rejection is one of the package's errors;
// where the input is well-formed the reason (precision or overflow) agrees.
//
//	go test ./money -run '^$' -fuzz FuzzParse$ -fuzztime 30s
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"0", "-0", "1", "12.5", "0.00000001", "-3.25", "1.123456789", "007.10",
		"92233720368.54775807", "92233720368.54775808", "-92233720368.54775808", "-92233720368.54775809",
		"1e8", "+1", " 1", "1.", ".5", "-", "--1", "1.2.3", "١",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := money.Parse(s)
		want, werr := refParse(s)
		switch {
		case werr == nil && err == nil:
			if got != want {
				t.Fatalf("Parse(%q) = %d, reference %d", s, got, want)
			}
		case werr == nil:
			t.Fatalf("Parse(%q) rejected (%v); reference reads %d", s, err, want)
		case err == nil:
			t.Fatalf("Parse(%q) = %d; reference rejects it (%v)", s, got, werr)
		case !errors.Is(err, money.ErrSyntax) && !errors.Is(err, money.ErrPrecision) && !errors.Is(err, money.ErrOverflow):
			t.Fatalf("Parse(%q) rejected with a foreign error %v", s, err)
		case !errors.Is(werr, money.ErrSyntax) && !errors.Is(err, werr):
			// A well-formed string is refused for one reason only.
			t.Fatalf("Parse(%q) rejected with %v, want %v", s, err, werr)
		}
	})
}
