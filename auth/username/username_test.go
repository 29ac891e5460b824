package username_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/portcullisdb/portcullis/auth/username"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		err  string // substring of the error; "" for none
	}{
		{name: "plain", in: "alice@example.com", want: "alice@example.com"},
		{name: "upper case folds", in: "Alice@Example.COM", want: "alice@example.com"},
		{name: "leading and trailing spaces trimmed", in: "  alice@example.com ", want: "alice@example.com"},
		{name: "no-break and ideographic spaces trimmed", in: "\u00a0alice\u3000", want: "alice"},
		{name: "inner space kept", in: "Alice Smith", want: "alice smith"},
		{name: "kelvin sign is k", in: "\u212Aate@example.com", want: "kate@example.com"},
		{name: "kelvin sign equals K", in: "KATE@example.com", want: "kate@example.com"},
		{name: "full-width letters", in: "ａｌｉｃｅ", want: "alice"},
		{name: "ligature", in: "\ufb01sh", want: "fish"},
		{name: "sharp s folds to ss", in: "Stra\u00dfe", want: "strasse"},
		{name: "capital sharp s", in: "STRA\u1e9eE", want: "strasse"},
		{name: "decomposed e acute composes", in: "jose\u0301", want: "jos\u00e9"},
		{name: "greek final sigma folds", in: "ΟΔΟΣ", want: "οδοσ"},
		{name: "turkish dotted I", in: "\u0130", want: "i\u0307"},
		{name: "ohm sign is omega", in: "\u2126", want: "\u03c9"},
		{name: "empty", in: "", err: "is empty"},
		{name: "only spaces", in: "   ", err: "is empty"},
		{name: "NUL", in: "alice@example.com\x00", err: "control character (U+0000) at position 18"},
		{name: "vertical tab", in: "alice\v@example.com", err: "control character (U+000B) at position 6"},
		{name: "tab is refused, not trimmed", in: "alice\t", err: "control character (U+0009)"},
		{name: "newline", in: "\nalice", err: "control character (U+000A) at position 1"},
		{name: "DEL", in: "al\x7fice", err: "control character (U+007F)"},
		{name: "C1 control", in: "al\u0085ice", err: "control character (U+0085)"},
		{name: "zero-width space", in: "ali\u200bce", err: "zero-width character (U+200B) at position 4"},
		{name: "zero-width non-joiner", in: "ali\u200cce", err: "zero-width character (U+200C)"},
		{name: "zero-width joiner", in: "ali\u200dce", err: "zero-width character (U+200D)"},
		{name: "word joiner", in: "ali\u2060ce", err: "zero-width character (U+2060)"},
		{name: "byte order mark", in: "\ufeffalice", err: "zero-width character (U+FEFF) at position 1"},
		{name: "right-to-left override", in: "alice\u202egnp.exe", err: "bidirectional control character (U+202E)"},
		{name: "left-to-right embedding", in: "\u202aalice", err: "bidirectional control character (U+202A)"},
		{name: "right-to-left isolate", in: "alice\u2067", err: "bidirectional control character (U+2067)"},
		{name: "pop directional isolate", in: "alice\u2069", err: "bidirectional control character (U+2069)"},
		{name: "left-to-right mark", in: "alice\u200e", err: "bidirectional control character (U+200E)"},
		{name: "right-to-left mark", in: "alice\u200f", err: "bidirectional control character (U+200F)"},
		{name: "arabic letter mark", in: "alice\u061c", err: "bidirectional control character (U+061C)"},
		{name: "soft hyphen", in: "ali\u00adce", err: "invisible format character (U+00AD)"},
		{name: "tag character", in: "alice\U000E0041", err: "invisible format character (U+E0041)"},
		{name: "line separator", in: "alice\u2028", err: "line or paragraph separator (U+2028)"},
		{name: "private use", in: "alice\ue000", err: "unassigned, private-use or not printable (U+E000)"},
		{name: "invalid UTF-8", in: "alice\xff", err: "not UTF-8"},
		{name: "replacement character", in: "alice\ufffd", err: "replacement character"},
		{name: "position counts characters, not bytes", in: "ü\x00", err: "at position 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := username.Normalize(tc.in)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("Normalize(%q) = %q, want an error with %q", tc.in, got, tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Normalize(%q) error = %q, want it to contain %q", tc.in, err, tc.err)
				}
				var ue *username.Error
				if !errors.As(err, &ue) {
					t.Fatalf("error %T is not *username.Error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestDisplayKeepsCaseAndTrims(t *testing.T) {
	got, err := username.Display("  Alice@Example.com ")
	if err != nil || got != "Alice@Example.com" {
		t.Fatalf("Display = %q, %v; want Alice@Example.com", got, err)
	}
	if _, err := username.Display("alice\x00"); err == nil {
		t.Fatal("Display accepted a NUL")
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{name: "case", a: "Alice@example.com", b: "alice@EXAMPLE.com", want: true},
		{name: "kelvin sign", a: "\u212Aate", b: "kate", want: true},
		{name: "spaces", a: " alice", b: "alice", want: true},
		{name: "different", a: "alice", b: "alicia", want: false},
		{name: "refused names equal nothing", a: "alice\x00", b: "alice\x00", want: false},
		{name: "zero-width is not alice", a: "al\u200bice", b: "alice", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := username.Equal(tc.a, tc.b); got != tc.want {
				t.Fatalf("Equal(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

// FuzzNormalize: never panics; the result is stable, accepted again,
// valid UTF-8, trimmed and non-empty.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"alice@example.com", " Alice ", "\u212Aate", "ﬁ", "ß", "\u0130", "ΣΑΣ", "a\x00",
		"\u202e", "\ufeff", "ｋ", "\u1e9e", "\u0345", "\u0390", "\ufdfa", "\u3300", "\u2126", "e\u0301\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := username.Normalize(s)
		if err != nil {
			if n != "" {
				t.Fatalf("Normalize(%q) returned %q with error %v", s, n, err)
			}
			return
		}
		if n == "" || !utf8.ValidString(n) || strings.TrimSpace(n) != n {
			t.Fatalf("Normalize(%q) = %q: empty, untrimmed or not UTF-8", s, n)
		}
		again, err := username.Normalize(n)
		if err != nil {
			t.Fatalf("Normalize(Normalize(%q) = %q) refused: %v", s, n, err)
		}
		if again != n {
			t.Fatalf("not idempotent: Normalize(%q) = %q, Normalize of that = %q", s, n, again)
		}
		if !username.Equal(s, n) {
			t.Fatalf("Equal(%q, %q) is false", s, n)
		}
	})
}

// BenchmarkNormalize: the proxy normalises a user name a few times per
// connection (the MySQL user name, the token's, the session count).
func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"ascii", "alice.smith@example.com"},
		{"mixed case", "Alice.Smith@Example.COM"},
		{"non-ASCII", "Zoë.Ærøskøbing@exämple.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := username.Normalize(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzASCIIFastPath: the printable-ASCII shortcut gives what the full
// NFKC and case-folding path gives.
func FuzzASCIIFastPath(f *testing.F) {
	f.Add("Alice@Example.COM ")
	f.Add("  ~`!@#$%^&*()_+{}|:<>?")
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		for i := range b {
			b[i] = 0x20 + b[i]%0x5f // printable ASCII
		}
		in := string(b)
		fast, err := username.Normalize(in)
		slow, serr := username.NormalizeSlow(in)
		if (err == nil) != (serr == nil) || fast != slow {
			t.Fatalf("Normalize(%q) = %q, %v; the full path gives %q, %v", in, fast, err, slow, serr)
		}
	})
}
