package username

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Error says why a user name is refused, naming the character and its
// position (1-based, in characters of the name as given) so a person can
// find it.
type Error struct {
	Name     string // the name as given, quoted with %q when printed
	Position int    // 1-based character position; 0 when not about one character
	Rune     rune
	Kind     string // "control character", "zero-width character", ...
}

func (e *Error) Error() string {
	if e.Position == 0 {
		return fmt.Sprintf("user name %q %s", e.Name, e.Kind)
	}
	return fmt.Sprintf("user name %q holds a %s (U+%04X) at position %d: remove it and try again",
		e.Name, e.Kind, e.Rune, e.Position)
}

// maxRounds bounds the NFKC/fold loop; real text is stable after one.
const maxRounds = 4

// Normalize returns the form user names are compared and stored by:
// trimmed, NFKC, case-folded. See the package documentation for what it
// refuses.
func Normalize(s string) (string, error) {
	if out, ok := printableASCII(s); ok {
		if out == "" {
			return "", &Error{Name: s, Kind: "is empty: give a user name"}
		}
		return out, nil
	}
	if err := check(s); err != nil {
		return "", err
	}
	folder := cases.Fold()
	out, stable := trim(s), false
	for range maxRounds {
		next := trim(folder.String(norm.NFKC.String(out)))
		if next == out {
			stable = true
			break
		}
		out = next
	}
	switch {
	case !stable:
		return "", &Error{Name: s, Kind: "does not normalise to a stable form: use plainer characters"}
	case out == "":
		return "", &Error{Name: s, Kind: "is empty: give a user name"}
	}
	// NFKC can map a compatibility character onto one the rule refuses
	// (no such mapping is known today): check what is returned too.
	if err := check(out); err != nil {
		return "", &Error{Name: s, Kind: "normalises to a name holding a forbidden character"}
	}
	return out, nil
}

// printableASCII is Normalize's fast path for the common name: when s is
// printable ASCII (space to tilde), NFKC changes nothing and case folding
// is ASCII lowercasing, so the result is s trimmed of spaces, lowercased.
func printableASCII(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return "", false
		}
	}
	return strings.ToLower(strings.Trim(s, " ")), true
}

// Display returns s trimmed, with its case and characters as given, after
// checking that Normalize accepts it: the form to store beside the key
// and to show.
func Display(s string) (string, error) {
	if _, err := Normalize(s); err != nil {
		return "", err
	}
	return trim(s), nil
}

// Equal reports whether a and b name the same user. A name Normalize
// refuses equals nothing, itself included.
func Equal(a, b string) bool {
	na, err := Normalize(a)
	if err != nil {
		return false
	}
	nb, err := Normalize(b)
	return err == nil && na == nb
}

// trim drops leading and trailing space separators (U+0020, U+00A0,
// U+3000, ...). Tabs and newlines are control characters: refused, not
// trimmed, so "alice\n" is an error rather than alice.
func trim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.Is(unicode.Zs, r) })
}

// check refuses the characters the package documentation lists.
func check(s string) error {
	pos := 0
	for i, r := range s {
		pos++
		if kind := forbidden(s, i, r); kind != "" {
			return &Error{Name: s, Position: pos, Rune: r, Kind: kind}
		}
	}
	return nil
}

func forbidden(s string, i int, r rune) string {
	switch {
	case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
		return "byte that is not UTF-8"
	case unicode.Is(unicode.Cc, r):
		return "control character"
	case r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF, r == 0x180E:
		return "zero-width character"
	case r == 0x061C, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return "bidirectional control character"
	case unicode.Is(unicode.Cf, r):
		return "invisible format character"
	case unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
		return "line or paragraph separator"
	case r == 0xFFFD:
		return "replacement character (the name was damaged on the way)"
	case !unicode.IsGraphic(r):
		return "character that is unassigned, private-use or not printable"
	}
	return ""
}
