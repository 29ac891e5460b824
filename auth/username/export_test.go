package username

import (
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// NormalizeSlow is Normalize without the ASCII fast path, for the fuzz
// test that compares the two.
func NormalizeSlow(s string) (string, error) {
	out := trim(s)
	for range maxRounds {
		next := trim(cases.Fold().String(norm.NFKC.String(out)))
		if next == out {
			break
		}
		out = next
	}
	if out == "" {
		return "", &Error{Name: s, Kind: "is empty: give a user name"}
	}
	return out, nil
}
